"""The response store: a cache of LLM calls that is also the experimental record.

Every call the package makes to a language model is one *record* (a JSON object). Records are
keyed by :func:`make_key`, a SHA-256 over the canonical JSON of the user-facing model name, the
messages, every sampling parameter and the sample index, so a rerun of the same experiment
replays the stored replies instead of calling the model again. Failed calls are kept as records
too (``error`` is set), but they are never cache hits: a rerun retries them.

Two implementations share one interface (:class:`Store`):

- :class:`MemoryStore`: records in a list; for tests and throw-away runs.
- :class:`JsonlStore`: JSON Lines on disk, the persistent format.

Design of :class:`JsonlStore`
-----------------------------
- One record per line, appended through :class:`dbnb.llm.jsonl.JsonlFile` (the layer's one
  append-only writer): a single ``write`` followed by ``flush`` and ``os.fsync`` (per record,
  or per call of :meth:`Store.put_many`), under an exclusive ``fcntl.flock`` on ``<path>.lock``,
  so several processes can write one store. Under the lock a writer first reads any lines
  other processes appended since its last look, so its in-memory index stays current.
- The *commit marker* is the newline that ends a record: a record counts only when its line is
  complete and parses. A crash mid-write leaves at most one truncated last line; opening the
  store ignores it (counted in :attr:`JsonlStore.n_truncated`), never raises, and the next append
  cuts it off before writing. Complete lines that do not parse (should not happen) are skipped
  and counted in :attr:`JsonlStore.n_corrupt`.
- Repeated request content is stored once (``dedup=True``, the default for writing): the
  first time a request body (:data:`BODY_FIELDS`: ``messages`` and ``params``, the prompt and
  grammar that every sample of a prompt repeats) is written, a *body line*
  ``{"body": <hash>, "messages": ..., "params": ...}`` goes first, in the same durable write as
  the record; every record line then carries ``"body": <hash>`` (:func:`body_hash`) instead of
  the body. The record line is written after its body, so its newline is still the commit
  marker; a body whose record was cut off is an orphan, ignored. Readers accept both layouts
  in one file (every store written before the deduplicated layout reads unchanged, and is
  appended to in the new one); ``dedup=False`` writes full records. Records read back are the
  full records in both cases.
- Stores shipped in ``data/`` are gzip-compressed JSON Lines (``.jsonl.gz``), written by
  :func:`compact`. A ``.gz`` path is always opened read-only.

Record fields
-------------
``key``, ``sample``, ``model``, ``messages``, ``params``, ``reply``, ``finish_reason``, ``usage``
(``prompt_tokens``, ``completion_tokens``), ``cost`` (USD, ``None`` when unknown), ``latency_s``,
``time`` (UTC ISO 8601), ``error`` (``None`` on success), and optionally ``attempts``
(1 + the Router's retries when litellm reports them, else ``None``), ``rate_limit_waits``
(how many times the Router refused the call over its own rpm/tpm limits before it went out;
such a refusal is waited out, never recorded as a failure),
``deployment`` (what served the call: a Router deployment's ``model_info.id``, or the litellm
model; for a failure, the deployment tried when known, else the text
``"unknown (litellm did not say which deployment failed)"``; not part of the key, so one
run over several deployments is one store) and ``meta``
(a free dict from the caller, e.g. agent name and prompt state; not part of the key).
``params`` never holds credentials: :func:`sanitize_params` drops API keys, tokens, secrets,
authorization, headers and the endpoint (``api_base``/``base_url``) before keying and storing.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .jsonl import JsonlFile, copy_json

__all__ = [
    "Store",
    "MemoryStore",
    "JsonlStore",
    "make_key",
    "sanitize_params",
    "is_secret_name",
    "compact",
    "body_hash",
    "BODY_FIELDS",
    "REQUIRED_FIELDS",
    "OPTIONAL_FIELDS",
]

REQUIRED_FIELDS = (
    "key",
    "sample",
    "model",
    "messages",
    "params",
    "reply",
    "finish_reason",
    "usage",
    "cost",
    "latency_s",
    "time",
    "error",
)
OPTIONAL_FIELDS = ("attempts", "rate_limit_waits", "deployment", "meta")

# Parameter names never keyed nor stored. "token" matches credentials (access_token,
# azure_ad_token) but not counts such as max_tokens, see `is_secret_name`.
_SECRET_PARTS = ("key", "secret", "authorization", "password", "credential", "header", "cookie")
_TRANSPORT = frozenset({"api_base", "base_url", "timeout", "max_retries", "num_retries"})
_TOKEN_RE = re.compile(r"token(?!s$)")


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """Whether a parameter or environment variable name looks like a credential.

    True for names containing ``key``, ``secret``, ``authorization``, ``password``,
    ``credential``, ``header`` or ``cookie``, and for names containing ``token`` unless as the
    plural ending of a count.

    Examples
    --------
    >>> is_secret_name("api_key"), is_secret_name("azure_ad_token"), is_secret_name("max_tokens")
    (True, True, False)
    """
    low = name.lower()
    if any(part in low for part in _SECRET_PARTS):
        return True
    # "token" anywhere, except as the plural ending of a count ("max_tokens").
    return bool(_TOKEN_RE.search(low))


def sanitize_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Return a deep copy of `params` without credentials or transport settings.

    Dropped at every nesting level: names containing ``key``, ``secret``, ``authorization``,
    ``password``, ``credential``, ``header`` or ``cookie``, and names containing ``token``
    unless they end in ``tokens`` (so ``max_tokens`` stays). Dropped at the top level:
    ``api_base``, ``base_url``, ``timeout``, ``max_retries``, ``num_retries`` (they say where and
    how to call, not what to sample).

    Parameters
    ----------
    params : Mapping[str, Any]
        Keyword arguments of a completion call.

    Returns
    -------
    dict
        The sampling parameters only.

    Examples
    --------
    >>> sanitize_params({"temperature": 1.0, "max_tokens": 5, "api_key": "sk-x",
    ...                  "api_base": "http://h", "extra_body": {"top_k": 0, "auth_token": "t"}})
    {'temperature': 1.0, 'max_tokens': 5, 'extra_body': {'top_k': 0}}
    """
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping, got {type(params).__name__}: {params!r}")

    def clean(obj: Any) -> Any:
        if isinstance(obj, Mapping):
            return {
                str(k): clean(v) for k, v in obj.items() if not is_secret_name(str(k))
            }
        if isinstance(obj, (list, tuple)):
            return [clean(v) for v in obj]
        return copy_json(obj)

    out = clean(params)
    return {k: v for k, v in out.items() if k not in _TRANSPORT}


def _canonical(obj: Any) -> Any:
    """Normalise numbers so that 1 and 1.0 hash alike; tuples become lists."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, float):
        if obj != obj or obj in (float("inf"), float("-inf")):
            raise ValueError(f"non-finite number {obj!r} cannot be part of a store key")
        return int(obj) if obj.is_integer() else obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    raise TypeError(f"value {obj!r} of type {type(obj).__name__} is not JSON-serialisable")


def make_key(
    model: str, messages: Iterable[Mapping[str, Any]], params: Mapping[str, Any], sample: int
) -> str:
    """SHA-256 hex digest identifying one draw from one prompt.

    The digest covers the canonical JSON (sorted keys, no whitespace, integral floats written
    as integers) of the user-facing model name, the messages, the sanitised sampling parameters
    (:func:`sanitize_params`) and the sample index. It does not cover ``meta``, the endpoint
    (``api_base``/port) or credentials, so replays work across runs and machines.

    Parameters
    ----------
    model : str
        User-facing model name, e.g. ``"local/smollm2"`` or ``"gpt-4o-mini"``.
    messages : iterable of mapping
        Chat messages (``{"role": ..., "content": ...}``).
    params : Mapping[str, Any]
        Sampling parameters, all of them (temperature, ``extra_body``, ...).
    sample : int
        Index of the draw: N samples of one prompt are N keys, indices ``0..N-1``.

    Returns
    -------
    str
        64 hexadecimal characters.

    Examples
    --------
    >>> m = [{"role": "user", "content": "hi"}]
    >>> make_key("x", m, {"temperature": 1}, 0) == make_key("x", m, {"temperature": 1.0}, 0)
    True
    >>> make_key("x", m, {}, 0) == make_key("x", m, {}, 1)
    False
    """
    if not isinstance(model, str) or not model:
        raise ValueError(f"model must be a non-empty string, got {model!r}")
    if isinstance(sample, bool) or not isinstance(sample, int) or sample < 0:
        raise ValueError(f"sample must be a non-negative int, got {sample!r}")
    payload = {
        "model": model,
        "messages": _canonical(list(messages)),
        "params": _canonical(sanitize_params(params)),
        "sample": sample,
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_record(record: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(record, Mapping):
        raise TypeError(f"record must be a mapping, got {type(record).__name__}")
    missing = [f for f in REQUIRED_FIELDS if f not in record]
    if missing:
        raise ValueError(f"record is missing field(s) {missing}; required: {list(REQUIRED_FIELDS)}")
    unknown = sorted(set(record) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        raise ValueError(
            f"record has unknown field(s) {unknown}; allowed: "
            f"{list(REQUIRED_FIELDS + OPTIONAL_FIELDS)} (put free annotations in 'meta')"
        )
    key = record["key"]
    if not isinstance(key, str) or not key:
        raise ValueError(f"record field 'key' must be a non-empty string, got {key!r}")
    sample = record["sample"]
    if isinstance(sample, bool) or not isinstance(sample, int) or sample < 0:
        raise ValueError(f"record field 'sample' must be a non-negative int, got {sample!r}")
    out = dict(record)
    out["params"] = sanitize_params(record["params"])
    return out


def _dumps(rec: Mapping[str, Any]) -> str:
    try:
        return json.dumps(rec, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"record with key {rec.get('key')!r} is not JSON-serialisable: {exc}")\
            from exc


# Fields of a record kept once per distinct request in the deduplicated layout.
BODY_FIELDS = ("messages", "params")


def body_hash(record: Mapping[str, Any]) -> str:
    """Content address of a record's request body (:data:`BODY_FIELDS`): 32 hex digits of a
    SHA-256 over their canonical JSON (sorted keys, no whitespace)."""
    text = json.dumps({f: record[f] for f in BODY_FIELDS}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class Store:
    """Interface and shared in-memory index of a response store.

    Subclasses implement :meth:`_append` (persist serialised records). The index holds every
    record in order (the experimental record) and, per key, the latest successful record
    (the cache).

    Notes
    -----
    ``len(store)`` and ``iter(store)`` cover *all* records, failures and repeated keys
    included; :meth:`keys` covers only keys with a successful record, i.e. the cache hits.
    """

    read_only: bool = False

    def __init__(self) -> None:
        self._records: list[dict[str, Any]] = []
        self._hits: dict[str, dict[str, Any]] = {}

    # -- index -------------------------------------------------------------------------
    def _index(self, record: dict[str, Any]) -> None:
        self._records.append(record)
        if record.get("error") is None:
            self._hits[record["key"]] = record

    # -- public interface --------------------------------------------------------------
    def get(self, key: str) -> dict[str, Any] | None:
        """The latest successful record for `key` (a copy), or ``None`` (a cache miss).

        Records with ``error`` set are kept in the store but never returned here.
        """
        rec = self._hits.get(key)
        return None if rec is None else copy_json(rec)

    def __contains__(self, key: object) -> bool:
        return key in self._hits

    def put(self, record: Mapping[str, Any]) -> None:
        """Validate, sanitise and persist one record (see the module docstring for fields)."""
        self.put_many([record])

    def put_many(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Validate, sanitise and persist several records in one durable append."""
        if self.read_only:
            raise PermissionError(
                f"{self!r} is read-only; open a writable JsonlStore on a .jsonl path to add records"
            )
        checked = [_check_record(r) for r in records]
        if not checked:
            return
        self._append(checked, self._lines(checked))

    def _lines(self, records: list[dict[str, Any]]) -> list[str]:
        """The JSON lines that persist `records` (one full record per line by default)."""
        lines = []
        for rec in records:
            lines.append(_dumps(rec))
        return lines

    def _append(self, records: list[dict[str, Any]], lines: list[str]) -> None:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (copy_json(r) for r in list(self._records))

    def keys(self) -> list[str]:
        """Keys that have a successful record (the cache hits), in first-success order."""
        return list(self._hits)

    @property
    def n_failed(self) -> int:
        """Number of records with ``error`` set (kept for the record, retried on rerun)."""
        return sum(r.get("error") is not None for r in self._records)

    def records_frame(self):
        """All records as a :class:`pandas.DataFrame`, one row per record.

        Columns are the record fields in the documented order plus ``prompt_tokens`` and
        ``completion_tokens`` taken from ``usage``; ``messages``, ``params``, ``usage`` and
        ``meta`` stay dict/list objects.
        """
        import pandas as pd

        cols = list(REQUIRED_FIELDS + OPTIONAL_FIELDS)
        rows = []
        for r in self._records:
            row = {c: r.get(c) for c in cols}
            usage = r.get("usage") or {}
            row["prompt_tokens"] = usage.get("prompt_tokens")
            row["completion_tokens"] = usage.get("completion_tokens")
            rows.append(row)
        return pd.DataFrame(rows, columns=cols + ["prompt_tokens", "completion_tokens"])


class MemoryStore(Store):
    """A store that keeps records in memory only (tests, scratch runs).

    Parameters
    ----------
    records : iterable of mapping, optional
        Records to start with (validated like :meth:`put`).
    """

    def __init__(self, records: Iterable[Mapping[str, Any]] = ()) -> None:
        super().__init__()
        self.put_many(records)

    def _append(self, records: list[dict[str, Any]], lines: list[str]) -> None:
        # Round-trip through JSON so the memory store holds exactly what a file would.
        for line in lines:
            self._index(json.loads(line))

    def __repr__(self) -> str:
        return f"MemoryStore(<{len(self)} records>)"


class JsonlStore(Store):
    """A response store in a JSON Lines file (append-only, multi-process safe).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.jsonl`` file (created with its parent directories on first write) or a
        ``.jsonl.gz`` file written by :func:`compact` (always read-only).
    read_only : bool, default False
        Refuse :meth:`put`. The file must exist.
    fsync : bool, default True
        Call ``os.fsync`` after each append. Turn off only for bulk conversions.
    dedup : bool, default True
        Write each distinct request body once and records that name it by hash (see the
        module docstring); False writes one full record per line (the old layout). Reading
        accepts both.

    Attributes
    ----------
    n_truncated : int
        Incomplete last lines found (0 or 1; a crash mid-write). Ignored, never an error.
    n_corrupt : int
        Complete lines that did not parse as a record. Skipped.
    """

    def __init__(self, path: str | os.PathLike, read_only: bool = False, *, fsync: bool = True,
                 dedup: bool = True):
        super().__init__()
        self.dedup = bool(dedup)
        self._bodies: dict[str, dict[str, Any]] = {}  # body hash -> {messages, params}
        self.path = Path(path)
        self.gzipped = self.path.name.endswith(".gz")
        self.read_only = bool(read_only) or self.gzipped
        self.n_truncated = 0
        self._not_records = 0  # complete JSON lines that are not records
        self._file = JsonlFile(self.path, fsync=fsync)
        if self.path.exists():
            if self.path.is_dir():
                raise IsADirectoryError(f"store path {str(self.path)!r} is a directory")
            self._ingest(self._file.read())
            self.n_truncated = 1 if self._file.tail.strip() else 0
        elif self.read_only:
            raise FileNotFoundError(f"store file {str(self.path)!r} does not exist (read_only)")

    @property
    def lock_path(self) -> Path:
        """The side file locked by writers (``<path>.lock``)."""
        return self._file.lock_path

    @property
    def fsync(self) -> bool:
        """Whether each append is followed by ``os.fsync``."""
        return self._file.fsync

    @fsync.setter
    def fsync(self, value: bool) -> None:
        self._file.fsync = bool(value)

    @property
    def n_corrupt(self) -> int:
        """Complete lines that did not parse as a record (skipped)."""
        return self._file.n_corrupt + self._not_records

    def __repr__(self) -> str:
        mode = "r" if self.read_only else "a"
        return f"JsonlStore({str(self.path)!r}, mode={mode!r}, <{len(self)} records>)"

    def _ingest(self, values: list[Any]) -> None:
        """Index the values read from the file that are records; count the others."""
        bodies = self._bodies
        for rec in values:
            if not isinstance(rec, dict):
                self._not_records += 1
            elif "key" in rec:
                ref = rec.pop("body", None)
                if ref is not None:  # deduplicated layout: the body was written before
                    body = bodies.get(ref)
                    if body is None:
                        self._not_records += 1
                        continue
                    rec.update(body)  # shared, never mutated: get() and iter() copy
                self._index(rec)
            elif "body" in rec and isinstance(rec.get("messages"), list):
                ref = rec.pop("body")
                bodies[ref] = {f: rec.get(f) for f in BODY_FIELDS}
            else:
                self._not_records += 1

    def _lines(self, records: list[dict[str, Any]]) -> list[str]:
        """Deduplicated layout: a body line the first time a request body is seen, then one
        short record line naming it by hash (the record line, written last, commits)."""
        if not self.dedup:
            return super()._lines(records)
        lines, new = [], {}
        for rec in records:
            h = body_hash(rec)
            if h not in self._bodies and h not in new:
                new[h] = True
                lines.append(_dumps({"body": h, **{f: rec[f] for f in BODY_FIELDS}}))
            short = {k: v for k, v in rec.items() if k not in BODY_FIELDS}
            short["body"] = h
            lines.append(_dumps(short))
        return lines

    def refresh(self) -> int:
        """Read records appended by other processes since the last read.

        Returns
        -------
        int
            Number of new records indexed.
        """
        if self.gzipped:
            return 0
        before = len(self._records)
        self._ingest(self._file.read())
        return len(self._records) - before

    def _append(self, records: list[dict[str, Any]], lines: list[str]) -> None:
        self._file.append(lines, on_read=self._ingest)
        for rec in records:
            rec = json.loads(json.dumps(rec))
            if self.dedup:
                h = body_hash(rec)
                body = self._bodies.setdefault(h, {f: rec[f] for f in BODY_FIELDS})
                rec.update(body)
            self._index(rec)


def compact(
    src: str | os.PathLike | Store, dst_gz: str | os.PathLike, *, successful_only: bool = False,
    dedup: bool = True,
) -> int:
    """Write a store as gzip-compressed JSON Lines (the format shipped in ``data/``).

    The output is written to a temporary file and renamed into place, so `dst_gz` is either
    the old file or the complete new one. The gzip header carries no timestamp, so compacting
    the same records twice gives identical bytes.

    Parameters
    ----------
    src : path or Store
        A ``.jsonl`` / ``.jsonl.gz`` path or any store.
    dst_gz : path
        Output path; must end in ``.gz``.
    successful_only : bool, default False
        Drop failed records (``error`` set). By default the full record is kept.
    dedup : bool, default True
        The layout of :class:`JsonlStore` (``dedup=True``): each distinct request body
        (:data:`BODY_FIELDS`) once, before the first record that names it by hash, so a run
        whose calls share a long grammar shrinks by the repetition gzip alone cannot remove
        across its window. ``False`` writes one full record per line (the old layout). Both
        read back to the same records.

    Returns
    -------
    int
        Number of records written.
    """
    dst = Path(dst_gz)
    if not dst.name.endswith(".gz"):
        raise ValueError(f"dst_gz must end in '.gz', got {str(dst)!r}")
    store = src if isinstance(src, Store) else JsonlStore(src, read_only=True)
    if not isinstance(src, Store) and Path(src).resolve() == dst.resolve():
        raise ValueError(f"src and dst_gz are the same file: {str(dst)!r}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + f".{os.getpid()}.tmp")
    n = 0
    try:
        with open(tmp, "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                seen: set[str] = set()
                for rec in store:
                    if successful_only and rec.get("error") is not None:
                        continue
                    if dedup and all(f in rec for f in BODY_FIELDS):
                        h = body_hash(rec)
                        if h not in seen:
                            seen.add(h)
                            body = {"body": h, **{f: rec[f] for f in BODY_FIELDS}}
                            gz.write((_dumps(body) + "\n").encode("utf-8"))
                        rec = {**{k: v for k, v in rec.items() if k not in BODY_FIELDS},
                               "body": h}
                    gz.write((_dumps(rec) + "\n").encode("utf-8"))
                    n += 1
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()
    return n
