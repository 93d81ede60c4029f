"""Data sets: what ships in ``data/`` and readers for the Letter's published formats.

Readers return :class:`~dbnb.counts.TransitionCounts`. Formats (see FORMATS.md of the project
notes):

* the "ideas" list (:func:`read_ideas_json`): a JSON array of
  ``{"target_expression", "target_score"?, "source_expressions": [{"expression", "score"?}]}``,
  one source entry per observed transition;
* the raw word dictionary (:func:`read_word_dict_json`): ``{prompt word: [replies in call order]}``.

In both, ``INVALID00`` marks a rejected reply: it is counted as an escape of its source and
never becomes a state. Neither format records every call, so ``N0`` is unknown
(``calls_kind=None``) and the default estimator is the out-count one of Eq. 24.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .counts import ESCAPE_LABELS, TransitionCounts

__all__ = [
    "data_dir",
    "claude4_table2",
    "read_counts_csv",
    "read_ideas_json",
    "read_word_dict_json",
    "score_to_mse",
    "paper",
    "paper_files",
    "letter_folder",
    "read_letter_json",
    "LetterFiles",
    "LETTER_FILES",
    "PAPER_REPO",
]

#: MSE of an expression on nikuradse_2 from its IdeaSearchFitter score (FORMATS.md).
MSE_AT_SCORE_20 = 0.06020935250966546
DEFAULT_SCORE = 20.0


def score_to_mse(score):
    """``MSE = 0.0602... * 10 ** (-(4/60) * (score - 20))``; higher score, better fit."""
    return MSE_AT_SCORE_20 * 10.0 ** (-(4.0 / 60.0) * (np.asarray(score, dtype=float) - 20.0))


def data_dir() -> Path:
    """The folder with the shipped data: ``$DBNB_DATA`` or ``data/`` next to the package."""
    env = os.environ.get("DBNB_DATA")
    path = Path(env) if env else Path(__file__).resolve().parent.parent / "data"
    if not path.is_dir():
        raise FileNotFoundError(
            f"dbnb's data folder {path} does not exist; install dbnb from a checkout of the "
            "repository (pip install -e .) or point DBNB_DATA at a copy of its data/ folder"
        )
    return path


def claude4_table2() -> TransitionCounts:
    """The Letter's Table II: Claude-4 word agent, 4000 calls per prompt word (nominal).

    The published TURKEY and BUZZY rows exceed 4000 replies, so ``N0`` is ``"nominal"`` and the
    default estimator is Eq. 18, ``T = min(N / 4000, 1)``.

    >>> c = claude4_table2()
    >>> c.count("PERSONAL", "ATTITUDE"), c.calls_kind
    (3879, 'nominal')
    """
    counts = read_counts_csv(data_dir() / "claude4_table2.csv")
    return counts.with_calls(4000, kind="nominal")._replace(
        source="Letter Table II (Claude-4, conditioned words)"
    )


def read_counts_csv(path: str | os.PathLike) -> TransitionCounts:
    """Read counts from a CSV file, long or dense (``#`` starts a comment line).

    * long: columns ``source, target, count`` (one row per transition type);
    * dense: first column the source state, one column per target state with the same labels
      as the rows, and optionally an ``escape`` column (the layout of Table II).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such data file: {path}")
    try:
        table = pd.read_csv(path, comment="#")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not a readable CSV table: {exc}") from None
    if {"source", "target", "count"}.issubset(table.columns):
        try:
            return TransitionCounts.from_frame(table, source=path.name)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    table = table.set_index(table.columns[0])
    escapes = table.pop("escape") if "escape" in table.columns else None
    rows = [str(x) for x in table.index]
    if list(table.columns) != rows:
        raise ValueError(
            f"{path}: neither a long table (source, target, count) nor a dense one: the "
            f"columns {list(table.columns)} must repeat the row labels {rows}"
        )
    long = table.stack()
    try:
        return TransitionCounts.from_triples(
            [str(x) for x in long.index.get_level_values(0)],
            [str(x) for x in long.index.get_level_values(1)],
            long.to_numpy(),
            states=rows,
            escapes=None if escapes is None else escapes.to_dict(),
            source=path.name,
        )
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _load_json(path: str | os.PathLike):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such data file: {path}")
    try:
        with open(path, encoding="utf-8-sig") as fh:  # a byte-order mark is accepted
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text: {exc}") from None


def _check_label(x, where: str) -> str:
    if not isinstance(x, str) or not x.strip():
        raise ValueError(f"{where} must be a non-empty string, got {x!r}")
    return x.strip()


def _check_score(x, where: str) -> float | None:
    if x is None:
        return None
    if isinstance(x, bool) or not isinstance(x, int | float) or not np.isfinite(x):
        raise ValueError(f"{where} must be a finite number, got {x!r}")
    return float(x)


def read_ideas_json(path: str | os.PathLike) -> TransitionCounts:
    """Read the Letter's "ideas" list (``ideasearchfitter_database.json``, word databases).

    Each entry of ``source_expressions`` is one observed transition source -> target.
    Scores go to ``metadata["score"]`` (first value seen per state; targets without a score
    get the authors' default 20.0) and ``metadata["mse"]`` (:func:`score_to_mse`). Targets equal
    to ``INVALID00`` count as escapes of their sources; entries whose source is ``INVALID00``
    are not transitions between states and are skipped.

    Raises
    ------
    FileNotFoundError, ValueError
        With the file name and the position of the first malformed element.
    """
    data = _load_json(path)
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON array of ideas, got {type(data).__name__}")
    if not data:
        raise ValueError(f"{path}: the ideas list is empty")
    sources: list[str] = []
    targets: list[str] = []
    score: dict[str, float] = {}
    labels: dict[str, None] = {}  # every state in order of first appearance
    for i, item in enumerate(data):
        where = f"{path}: element {i}"
        if not isinstance(item, dict):
            raise ValueError(f"{where} is a {type(item).__name__}, expected an object")
        if "target_expression" not in item:
            raise ValueError(f"{where} has no 'target_expression' (keys: {sorted(item)})")
        target = _check_label(item["target_expression"], f"{where} target_expression")
        ts = _check_score(item.get("target_score"), f"{where} target_score")
        if target not in ESCAPE_LABELS:
            score.setdefault(target, DEFAULT_SCORE if ts is None else ts)
            labels.setdefault(target, None)
        srcs = item.get("source_expressions", [])
        if not isinstance(srcs, list):
            raise ValueError(f"{where}: 'source_expressions' must be a list")
        for j, s in enumerate(srcs):
            if not isinstance(s, dict) or "expression" not in s:
                raise ValueError(f"{where}, source {j}: expected an object with 'expression'")
            src = _check_label(s["expression"], f"{where}, source {j} expression")
            ss = _check_score(s.get("score"), f"{where}, source {j} score")
            if src in ESCAPE_LABELS:
                continue
            if ss is not None:
                score.setdefault(src, ss)
            labels.setdefault(src, None)
            sources.append(src)
            targets.append(target)
    if not sources:
        raise ValueError(f"{path}: no transitions (every 'source_expressions' list is empty)")
    meta = pd.DataFrame({"score": pd.Series(score, dtype=float)})
    meta["mse"] = score_to_mse(meta["score"])
    return TransitionCounts.from_pairs(
        sources, targets, states=list(labels), metadata=meta, source=str(Path(path).name)
    )


def read_word_dict_json(path: str | os.PathLike) -> TransitionCounts:
    """Read the authors' raw word-agent output ``{prompt: [replies in call order]}``.

    Replies are upper-cased and stripped. ``INVALID00`` replies are escapes; its own entry (it
    became a prompt word in the authors' script) is skipped. Replies that were not alphabetic or
    equal to the prompt were never recorded, so ``N0`` stays unknown.
    """
    data = _load_json(path)
    if not isinstance(data, dict):
        raise ValueError(
            f"{path}: expected a JSON object prompt -> replies, got {type(data).__name__}"
        )
    sources: list[str] = []
    targets: list[str] = []
    for key, replies in data.items():
        prompt = _check_label(key, f"{path}: prompt word").upper()
        if prompt in ESCAPE_LABELS:
            continue
        if not isinstance(replies, list):
            raise ValueError(
                f"{path}: replies of {key!r} must be a list, got {type(replies).__name__}"
            )
        for j, r in enumerate(replies):
            reply = _check_label(r, f"{path}: reply {j} of {key!r}").upper()
            sources.append(prompt)
            targets.append(reply)
    if not sources:
        raise ValueError(f"{path}: no replies recorded")
    return TransitionCounts.from_pairs(sources, targets, source=str(Path(path).name))


#: The authors' data set on Hugging Face (CC BY 4.0).
PAPER_REPO = "Nondegeneracy/detailed-balance-llm"


def _reader_for(name: str):
    """The reader for a file of the Letter's data set, by name; None if not ours."""
    low = name.lower().rsplit("/", 1)[-1]
    if not low.endswith(".json"):
        return None
    if "database" in low or "ideasearch" in low:
        return read_ideas_json
    if "word" in low:
        return read_word_dict_json
    return None


def _hub():
    try:
        import huggingface_hub
    except ImportError as exc:  # pragma: no cover - huggingface_hub comes with litellm
        raise ImportError("reading the Letter's data needs huggingface_hub (pip install "
                          "huggingface_hub)") from exc
    return huggingface_hub


def _hub_list(repo_id: str, revision: str | None) -> list[str]:
    """The files of a Hugging Face data set; offline, a ConnectionError that says what to do."""
    try:
        return _hub().HfApi().list_repo_files(repo_id, repo_type="dataset", revision=revision)
    except Exception as exc:  # network errors come in many types; report them as one
        raise ConnectionError(
            f"cannot list the Hugging Face data set {repo_id!r} ({type(exc).__name__}: {exc}). "
            "It needs a network connection once; offline, copy the data set's files into a "
            "folder and pass that folder (dbnb reproduce --source DIR), or use the shipped "
            "data (dbnb reproduce)."
        ) from None


def _hub_download(repo_id: str, name: str, revision: str | None,
                  cache_dir: str | os.PathLike | None) -> str:
    """Download one file of a Hugging Face data set into its cache; the local path."""
    try:
        return _hub().hf_hub_download(repo_id, name, repo_type="dataset", revision=revision,
                                      cache_dir=cache_dir)
    except Exception as exc:
        raise ConnectionError(
            f"cannot download {name!r} from the Hugging Face data set {repo_id!r} "
            f"({type(exc).__name__}: {exc}); offline, copy the data set's files into a folder "
            "and pass that folder (dbnb reproduce --source DIR)"
        ) from None


def _hub_cached(repo_id: str, revision: str | None,
                cache_dir: str | os.PathLike | None) -> Path | None:
    """The folder of a snapshot of the data set already in the Hugging Face cache (no
    network), or None."""
    try:
        path = _hub().snapshot_download(repo_id, repo_type="dataset", revision=revision,
                                        cache_dir=cache_dir, local_files_only=True)
    except Exception:  # not cached, or no huggingface_hub: the caller reports the listing error
        return None
    return Path(path) if path and Path(path).is_dir() else None


def paper(*, repo_id: str = PAPER_REPO, cache_dir: str | os.PathLike | None = None,
          revision: str | None = None) -> dict[str, TransitionCounts]:
    """Fetch and read the authors' data set from Hugging Face (needs a network once).

    Lists the data-set repository, downloads the JSON files it understands (the "ideas"
    databases ``*database*.json`` and raw word dictionaries ``*word*.json``) into the
    Hugging Face cache (``cache_dir``), and reads each with :func:`read_ideas_json` or
    :func:`read_word_dict_json`. Returns ``{file stem: counts}``.

    Raises
    ------
    ConnectionError
        No network and nothing cached: says what to do.
    ValueError
        The repository holds no file in a known format (names what it found).

    See Also
    --------
    paper_files : the same files by what they are (Claude-4, Gemini, GPT-5 Nano,
        IdeaSearchFitter; :data:`LETTER_FILES`), which ``dbnb reproduce --source paper`` and
        :class:`dbnb.sources.Sources` use; this function only reads every file it can.
    """
    files = _hub_list(repo_id, revision)
    wanted = [f for f in files if _reader_for(f) is not None]
    if not wanted:
        raise ValueError(
            f"the data set {repo_id!r} holds no file in a format dbnb reads (ideas JSON or "
            f"word-dict JSON); it has: {sorted(files)[:20]}"
        )
    out: dict[str, TransitionCounts] = {}
    for name in wanted:
        local = _hub_download(repo_id, name, revision, cache_dir)
        out[Path(name).stem] = _reader_for(name)(local)
    return out


#: The files of the authors' data set by name, as their scripts read them, and what each is.
LETTER_FILES = {
    "word_database_claude-4.json": "claude",
    "word_database_gemini-2.5-flash-nothinking.json": "gemini",
    "word_database_gpt5-nano.json": "gpt5nano",
    "ideasearchfitter_database.json": "ideasearchfitter",
}


def read_letter_json(path: str | os.PathLike) -> TransitionCounts:
    """Read a Letter-format JSON file, whichever of the two formats it holds.

    A JSON array is the "ideas" list (:func:`read_ideas_json`), an object the raw word
    dictionary (:func:`read_word_dict_json`). A UTF-8 byte-order mark is accepted.

    Raises
    ------
    FileNotFoundError, ValueError
        Naming the file: not JSON, neither format, or a malformed element.
    """
    data = _load_json(path)
    if isinstance(data, dict):
        return read_word_dict_json(path)
    if isinstance(data, list):
        return read_ideas_json(path)
    raise ValueError(f"{path}: expected a JSON array (ideas list) or object (word dictionary), "
                     f"got {type(data).__name__}")


@dataclass(frozen=True)
class LetterFiles:
    """The files of (a copy of) the authors' data set, mapped by identity.

    Attributes
    ----------
    where : str
        The folder or repository the files came from.
    files : dict
        ``{role: path}`` for the files of :data:`LETTER_FILES` that are present; roles
        ``"claude"``, ``"gemini"``, ``"gpt5nano"``, ``"ideasearchfitter"``.
    unknown : tuple of str
        Every other file found (listed, never guessed at).
    """

    where: str
    files: dict[str, Path] = field(default_factory=dict)
    unknown: tuple[str, ...] = ()

    def name(self, role: str) -> str:
        """The file name of ``role`` (as the authors' scripts name it)."""
        return self.files[role].name

    def read(self, role: str) -> TransitionCounts:
        """The counts of one file (:func:`read_letter_json`), labelled with its name."""
        if role not in self.files:
            raise KeyError(f"no {role!r} file in {self.where} (expected "
                           f"{_file_of_role(role)!r}; found {sorted(self.files)})")
        return read_letter_json(self.files[role])


def _file_of_role(role: str) -> str:
    return {v: k for k, v in LETTER_FILES.items()}.get(role, "?")


def letter_folder(folder: str | os.PathLike) -> LetterFiles:
    """Map the files of a local copy of the authors' data set (``Nondegeneracy/
    detailed-balance-llm`` as downloaded) to what they are, by file name.

    The folder is searched recursively (a hub snapshot may keep the files under ``data/``);
    names are matched exactly (:data:`LETTER_FILES`), case-insensitively. Hidden files and
    folders (``.git``, ``.cache``) are ignored; everything else is listed in ``unknown``.

    Raises
    ------
    FileNotFoundError
        ``folder`` is not a directory.
    ValueError
        No known file in it (names what was found), or a name found twice.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder: {root}")
    known = {k.lower(): v for k, v in LETTER_FILES.items()}
    files: dict[str, Path] = {}
    unknown: list[str] = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if not p.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        role = known.get(p.name.lower())
        if role is None:
            unknown.append(str(rel))
        elif role in files:
            raise ValueError(f"{root}: two files for {role!r}: {files[role]} and {p}")
        else:
            files[role] = p
    if not files:
        raise ValueError(f"{root} holds none of the Letter's files {sorted(LETTER_FILES)}; "
                         f"found: {unknown[:20]}")
    return LetterFiles(str(root), files, tuple(unknown))


def paper_files(*, repo_id: str = PAPER_REPO, cache_dir: str | os.PathLike | None = None,
                revision: str | None = None) -> LetterFiles:
    """Download the files of :data:`LETTER_FILES` from the authors' Hugging Face data set
    (needs a network once) and map them by name.

    Offline, a snapshot already in the Hugging Face cache (``cache_dir``) is used instead
    (``snapshot_download(..., local_files_only=True)``), mapped as a folder
    (:func:`letter_folder`).

    Raises
    ------
    ConnectionError
        The repository cannot be listed and nothing is cached, or a file cannot be fetched
        (offline): names the data set and says what to do (``--source DIR``).
    ValueError
        The repository holds none of the known files (names what it has).
    """
    try:
        listed = _hub_list(repo_id, revision)
    except ConnectionError:
        cached = _hub_cached(repo_id, revision, cache_dir)
        if cached is None:
            raise
        try:  # offline, but downloaded before: the snapshot in the cache
            found = letter_folder(cached)
        except ValueError:
            raise ConnectionError(
                f"cannot list the Hugging Face data set {repo_id!r} (offline) and its cached "
                f"snapshot {cached} holds none of the Letter's files; pass a folder with them "
                "(dbnb reproduce --source DIR)") from None
        return LetterFiles(f"{cached} (Hugging Face cache of {repo_id}, offline)",
                           found.files, found.unknown)
    known = {k.lower(): v for k, v in LETTER_FILES.items()}
    files: dict[str, Path] = {}
    unknown: list[str] = []
    for name in sorted(listed):
        role = known.get(Path(name).name.lower())
        if role is None:
            if not Path(name).name.startswith("."):
                unknown.append(name)
            continue
        files[role] = Path(_hub_download(repo_id, name, revision, cache_dir))
    if not files:
        raise ValueError(f"the data set {repo_id!r} holds none of the Letter's files "
                         f"{sorted(LETTER_FILES)}; it has: {unknown[:20]}")
    return LetterFiles(f"huggingface.co/datasets/{repo_id}", files, tuple(unknown))
