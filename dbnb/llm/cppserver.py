"""llama.cpp's own HTTP server, ``llama-server``: build it, find it, start it.

Why a second server
-------------------
llama-cpp-python's server (:class:`dbnb.llm.local.LocalServer`) takes text prompts only, so a
served kernel scored on it reaches the canonical tokenisation of each reply and no other
(:mod:`dbnb.llm.logprob.served`). ``llama-server`` takes a prompt of token ids on
``/v1/completions``, returns the full-vocabulary pre-sampling log-probabilities keyed by token
id (``logprobs = n_vocab``), and reports how many prompt tokens it took from its KV cache
(``usage.prompt_tokens_details.cached_tokens``): everything the exact walk needs, over HTTP
(:func:`dbnb.llm.logprob.served_replies` with ``tokenisations="all"``). It speaks the same
protocol as vLLM's completions endpoint, which is what a GPU cluster runs.

The binary is built from the llama.cpp sources vendored in the llama-cpp-python release that is
installed here (:func:`build_llama_server`), so the server's ggml kernels are compiled from the
same source as the in-process walk's, and cached per version in the user cache. PyPI ships no
``llama-server`` binary and Debian 12 no llama.cpp package; a binary of another llama.cpp build
can be given in ``$DBNB_LLAMA_SERVER`` (its arithmetic is then its own: the kernel records the
server's build and flags).

Arithmetic settings
-------------------
:class:`LlamaServer` starts it with the in-process walk's settings (:mod:`dbnb.llm.logprob.model`):
``-c 2048 -b 512 -ub 512``, one slot (``-np 1``), flash attention off (``-fa off``), no weight
repacking (``--no-repack``, the plain CPU kernels of :func:`dbnb.llm.local.plain_cpu_kernels`),
no host-memory prompt cache (``--cache-ram 0``), one thread unless told otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from .local import LocalServer, _http_get_ok, model_path

__all__ = ["ENV_LLAMA_SERVER", "LlamaServer", "build_llama_server", "find_llama_server",
           "llama_server_cache"]

ENV_LLAMA_SERVER = "DBNB_LLAMA_SERVER"
"""Environment variable naming a ``llama-server`` binary to use instead of the cached build."""

#: CMake options of the build: CPU only, static, no network, no web UI, native vector unit (as
#: pip builds llama-cpp-python here).
CMAKE_OPTIONS = (
    "-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF", "-DGGML_NATIVE=ON",
    "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_TOOLS=ON", "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF",
)


def _llama_cpp_version() -> str:
    try:
        from importlib.metadata import version

        return version("llama-cpp-python")
    except Exception as exc:  # noqa: BLE001 - any failure means: not installed
        raise ImportError(
            f"llama-server is built from the installed llama-cpp-python's sources ({exc}); "
            'install the local extra: pip install -e ".[local]"') from exc


def llama_server_cache(version: str | None = None) -> Path:
    """The directory holding the cached build for a llama-cpp-python version.

    ``$XDG_CACHE_HOME/dbnb/llama-server-<version>`` (default ``~/.cache``).
    """
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "dbnb" / f"llama-server-{version or _llama_cpp_version()}"


def find_llama_server() -> Path | None:
    """The ``llama-server`` binary to use, or None when there is none yet.

    ``$DBNB_LLAMA_SERVER`` when set (it must name an executable file), else the cached build
    for the installed llama-cpp-python (:func:`build_llama_server`). A ``llama-server`` on
    ``PATH`` is not used unless named: its llama.cpp build may differ from the walk's.

    Raises
    ------
    FileNotFoundError
        ``$DBNB_LLAMA_SERVER`` names no executable file.
    """
    env = os.environ.get(ENV_LLAMA_SERVER)
    if env:
        p = Path(env)
        if not (p.is_file() and os.access(p, os.X_OK)):
            raise FileNotFoundError(f"{ENV_LLAMA_SERVER}={env!r} is not an executable file")
        return p
    p = llama_server_cache() / "llama-server"
    return p if p.is_file() and os.access(p, os.X_OK) else None


def _sdist(version: str, into: Path) -> Path:
    """Download the llama-cpp-python source release of `version` with pip; its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
           ":all:", f"llama-cpp-python=={version}", "-d", str(into)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    got = sorted(into.glob("llama_cpp_python-*.tar.gz"))
    if not got:
        raise RuntimeError(f"could not download the llama-cpp-python {version} source release "
                           f"({' '.join(cmd)}): {r.stderr.strip()[-800:]}")
    return got[0]


def build_llama_server(*, source: str | os.PathLike | None = None, jobs: int | None = None,
                       force: bool = False, quiet: bool = False) -> Path:
    """Build ``llama-server`` from llama-cpp-python's vendored llama.cpp and cache it.

    Parameters
    ----------
    source : path, optional
        The llama-cpp-python source release (``.tar.gz``) or an unpacked tree of it; default:
        downloaded with pip (the version installed here).
    jobs : int, optional
        Parallel compile jobs (default: the number of CPUs).
    force : bool
        Rebuild even when a cached binary exists.
    quiet : bool
        Do not print progress lines to stderr.

    Returns
    -------
    pathlib.Path
        The cached binary (:func:`llama_server_cache`); next to it ``build.json`` records the
        version, the CMake options and the compiler.

    Raises
    ------
    RuntimeError
        CMake is missing, or the download or the build failed (the log's tail is quoted).

    Notes
    -----
    Measured here (2 cores, gcc 12): about 7 minutes, download included (6.7 min on 2026-12-04).
    """
    version = _llama_cpp_version()
    dest = llama_server_cache(version)
    binary = dest / "llama-server"
    if binary.is_file() and not force:
        return binary
    cmake = shutil.which("cmake")
    if cmake is None:
        raise RuntimeError("building llama-server needs cmake (Debian: apt install cmake; "
                           "or pip install cmake)")
    say = (lambda *a: None) if quiet else (lambda *a: print("[llama-server]", *a,
                                                             file=sys.stderr, flush=True))
    with tempfile.TemporaryDirectory(prefix="dbnb-llama-server-") as tmp:
        tmp = Path(tmp)
        if source is None:
            say(f"downloading the llama-cpp-python {version} source release")
            source = _sdist(version, tmp)
        src = Path(source)
        if src.is_file():
            import tarfile

            say(f"unpacking {src.name}")
            with tarfile.open(src) as tf:
                tf.extractall(tmp / "src", filter="data")
            tops = [p for p in (tmp / "src").iterdir() if p.is_dir()]
            src = tops[0] if len(tops) == 1 else tmp / "src"
        tree = src / "vendor" / "llama.cpp"
        if not (tree / "tools" / "server").is_dir():
            raise RuntimeError(f"{str(source)!r} holds no vendor/llama.cpp/tools/server: not a "
                               "llama-cpp-python source release")
        build = tmp / "build"
        n = str(jobs or os.cpu_count() or 1)
        for step, cmd in (
                ("configuring", [cmake, "-S", str(tree), "-B", str(build), *CMAKE_OPTIONS]),
                (f"compiling with {n} jobs (about 6 min on 2 cores)",
                 [cmake, "--build", str(build), "--target", "llama-server", "-j", n])):
            say(step)
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"llama-server build failed while {step.split(' ')[0]} "
                                   f"({' '.join(cmd)}):\n{(r.stdout + r.stderr)[-2000:]}")
        made = build / "bin" / "llama-server"
        if not made.is_file():
            raise RuntimeError(f"the build finished without {made}")
        dest.mkdir(parents=True, exist_ok=True)
        part = dest / f".llama-server.{os.getpid()}.part"
        shutil.copy2(made, part)
        cc = subprocess.run([os.environ.get("CC", "cc"), "--version"], capture_output=True,
                            text=True).stdout.splitlines()[:1]
        (dest / "build.json").write_text(json.dumps(
            {"llama_cpp_python": version, "cmake_options": list(CMAKE_OPTIONS),
             "compiler": cc[0] if cc else None}, indent=1) + "\n")
        os.replace(part, binary)  # last: a cached binary is a finished build
    say(f"built {binary}")
    return binary


class LlamaServer(LocalServer):
    """``llama-server`` for a local model, with the in-process walk's arithmetic settings.

    Parameters
    ----------
    model, port, host, n_ctx, startup_timeout, n_threads
        As in :class:`dbnb.llm.local.LocalServer` (default one thread: the walk's).
    binary : path, optional
        The executable; default :func:`find_llama_server`.
    flash_attn : {"off", "on", "auto"}, default "off"
        ``-fa``; off matches the in-process walk and llama-cpp-python's server.

    Examples
    --------
    >>> with LlamaServer("smollm2") as srv:  # doctest: +SKIP
    ...     srv.api_base
    'http://127.0.0.1:40123/v1'
    """

    def __init__(self, model: str = "smollm2", *, binary: str | os.PathLike | None = None,
                 flash_attn: str = "off", n_threads: int | None = 1, **kwargs: Any) -> None:
        super().__init__(model, n_threads=n_threads, **kwargs)
        if flash_attn not in ("off", "on", "auto"):
            raise ValueError(f"flash_attn must be 'off', 'on' or 'auto', got {flash_attn!r}")
        self.flash_attn = flash_attn
        self.binary = None if binary is None else Path(binary)

    def _binary(self) -> Path:
        b = self.binary or find_llama_server()
        if b is None:
            raise FileNotFoundError(
                "no llama-server binary: build it once with `dbnb build-llama-server` "
                f"(dbnb.llm.cppserver.build_llama_server), or set {ENV_LLAMA_SERVER}")
        return b

    def _flags(self) -> list[str]:
        t = str(self.n_threads or os.cpu_count() or 1)
        return ["-c", str(self.n_ctx), "-b", "512", "-ub", "512", "-np", "1",
                "-fa", self.flash_attn, "--no-repack", "--cache-ram", "0",
                "-t", t, "-tb", t, "--no-warmup", "--alias", self.name]

    def _argv(self) -> list[str]:
        gguf = model_path(self.name)
        return [str(self._binary()), "-m", str(gguf), "--host", self.host,
                "--port", str(self.port), *self._flags()]

    def props(self) -> dict[str, Any]:
        """The server's ``GET /props`` (build info, default generation settings)."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://{self.host}:{self.port}/props", timeout=10) as r:
            return json.loads(r.read())

    def settings(self) -> dict[str, Any]:
        """What the server's arithmetic depends on, for a kernel's ``info``: the binary and its
        build (``build.json`` of a cached build, ``/props`` build info when running), the flags
        and this machine (:func:`dbnb.llm.logprob.machine_info`)."""
        from .logprob.model import machine_info

        b = self._binary()
        build = b.parent / "build.json"
        out: dict[str, Any] = {
            "server": "llama-server",
            "binary": b.name,
            "build": json.loads(build.read_text()) if build.is_file() else None,
            "flags": self._flags(),
            "model_alias": self.name,
            "n_ctx": self.n_ctx,
            "n_threads": self.n_threads,
            "flash_attn": self.flash_attn,
            "extra_buffer_types": False,
            "machine": machine_info(self.name, n_threads=self.n_threads or 0),
        }
        if self.proc is not None and self.proc.poll() is None and _http_get_ok(
                self.api_base + "/models"):
            out["build_info"] = self.props().get("build_info")
        return out

    def __repr__(self) -> str:
        state = "running" if self.proc is not None and self.proc.poll() is None else "stopped"
        return f"LlamaServer({self.name!r}, port={self.port}, pid={self.pid}, {state})"
