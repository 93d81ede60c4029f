"""The one append-only JSON Lines file of the LLM layer, and a fast copy of JSON-like data.

:class:`JsonlFile` is what the response store (:class:`dbnb.llm.store.JsonlStore`) and the
checkpoints of the log-probability kernels (:func:`dbnb.llm.logprob.logprob_replies`) write.

- One value per line, UTF-8 JSON. The *commit marker* is the newline that ends a line: a value
  counts only when its line is complete and parses.
- :meth:`JsonlFile.append` holds an exclusive ``fcntl.flock`` on a side file ``<path>.lock``
  for the duration of one append, so several processes can append to one file. Under the lock
  it first reads the lines other processes appended since its last read (handing them to the
  caller, so an in-memory index stays current), cuts off a crash remnant (an incomplete last
  line: under the lock no one else is mid-write), then writes all lines with a single
  ``write`` followed by ``os.fsync``.
- :meth:`JsonlFile.read` never raises on a cut last line: it is remembered as
  :attr:`JsonlFile.tail` and not parsed. Complete lines that do not parse are skipped and
  counted (:attr:`JsonlFile.n_corrupt`).
- A ``.gz`` path is gzip-compressed JSON Lines, read-only; a truncated gzip stream loses only
  its tail.
"""

from __future__ import annotations

import copy
import fcntl
import gzip
import io
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["JsonlFile", "copy_json"]


def copy_json(obj: Any) -> Any:
    """Deep copy of JSON-like data (much faster than ``copy.deepcopy``).

    Dicts, lists and tuples (which become lists) are copied recursively; strings, numbers,
    booleans and ``None`` are shared; other leaves are deep-copied.

    Examples
    --------
    >>> a = {"x": [1, {"y": (2, 3)}]}
    >>> b = copy_json(a)
    >>> b, b["x"] is a["x"]
    ({'x': [1, {'y': [2, 3]}]}, False)
    """
    t = type(obj)
    if t is dict:
        return {k: copy_json(v) for k, v in obj.items()}
    if t is list or t is tuple:
        return [copy_json(v) for v in obj]
    if t is str or t is int or t is float or t is bool or obj is None:
        return obj
    if isinstance(obj, Mapping):
        return {k: copy_json(v) for k, v in obj.items()}
    return copy.deepcopy(obj)


class JsonlFile:
    """An append-only JSON Lines file shared by processes (see the module docstring).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.jsonl`` file (created with its parent directories on the first append) or a
        ``.jsonl.gz`` file (read-only).
    fsync : bool, default True
        Call ``os.fsync`` after each append.

    Attributes
    ----------
    offset : int
        Bytes of the file consumed, up to the end of the last complete line read.
    tail : bytes
        Bytes after the last complete line at the last read (a cut line; normally empty).
    n_corrupt : int
        Complete lines that did not parse as JSON, skipped.
    """

    def __init__(self, path: str | os.PathLike, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.gzipped = self.path.name.endswith(".gz")
        self.fsync = bool(fsync)
        self.offset = 0
        self.tail = b""
        self.n_corrupt = 0
        self._gz_read = False

    @property
    def lock_path(self) -> Path:
        """The side file locked by writers (``<path>.lock``)."""
        return self.path.with_name(self.path.name + ".lock")

    def __repr__(self) -> str:
        return f"JsonlFile({str(self.path)!r}, offset={self.offset})"

    # -- reading -----------------------------------------------------------------------------
    def _parse(self, data: bytes) -> list[Any]:
        """The values of the complete lines of `data` (read from :attr:`offset`)."""
        end = data.rfind(b"\n")
        complete, tail = (data[: end + 1], data[end + 1 :]) if end >= 0 else (b"", data)
        out = []
        for line in complete.splitlines():
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                self.n_corrupt += 1
        self.offset += len(complete)
        self.tail = tail
        return out

    def read(self) -> list[Any]:
        """Values of the complete lines appended since the last read (all of them at first).

        A missing file reads as empty; a gzip file is read once, as far as it decompresses.
        """
        if self.gzipped:
            if self._gz_read or not self.path.exists():
                return []
            self._gz_read = True
            return self._parse(_read_gzip_tolerant(self.path))
        if not self.path.exists():
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            return self._parse(fh.read())

    # -- writing -----------------------------------------------------------------------------
    def append(self, lines: Sequence[str],
               on_read: Callable[[list[Any]], None] | None = None) -> None:
        """Append `lines` (JSON texts without newline) durably, under the file lock.

        Parameters
        ----------
        lines : sequence of str
            One JSON text per line, without the newline.
        on_read : callable, optional
            Called under the lock, before writing, with the values other writers appended
            since the last read (when there are any), e.g. to keep an index current.

        Raises
        ------
        PermissionError
            A ``.gz`` file.
        RuntimeError
            The file shrank below what was already read (someone rewrote it).
        """
        if self.gzipped:
            raise PermissionError(f"{str(self.path)!r} is gzip-compressed, hence read-only")
        if not lines:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = ("\n".join(lines) + "\n").encode("utf-8")
        lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                size = os.fstat(fd).st_size
                if size > self.offset:
                    # Lines from other writers, and perhaps a crashed writer's partial line.
                    os.lseek(fd, self.offset, os.SEEK_SET)
                    others = self._parse(_read_all(fd, size - self.offset))
                    if others and on_read is not None:
                        on_read(others)
                elif size < self.offset:
                    raise RuntimeError(
                        f"file {str(self.path)!r} shrank from {self.offset} to {size} bytes "
                        "while open; refusing to append"
                    )
                if self.tail:
                    # Under the lock no one else is mid-write: the tail is a crash remnant.
                    os.ftruncate(fd, self.offset)
                    self.tail = b""
                os.lseek(fd, 0, os.SEEK_END)
                _write_all(fd, payload)
                if self.fsync:
                    os.fsync(fd)
                self.offset += len(payload)
            finally:
                os.close(fd)
        finally:
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
            os.close(lock_fd)


def _read_all(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_gzip_tolerant(path: Path) -> bytes:
    """Decompress what can be decompressed of a possibly truncated gzip file."""
    out = io.BytesIO()
    with gzip.open(path, "rb") as fh:
        try:
            while True:
                chunk = fh.read(1 << 20)
                if not chunk:
                    break
                out.write(chunk)
        except (EOFError, gzip.BadGzipFile, OSError):
            pass
    return out.getvalue()
