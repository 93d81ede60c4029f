"""Every notebook runs top to bottom on the shipped data (offline, no API key), and the
committed .ipynb files are up to date with their sources in notebooks/py/."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")


def test_notebooks_exist():
    names = {p.stem[:2] for p in NOTEBOOKS}
    assert {"00", "01", "02", "03", "04", "05"} <= names


def test_notebooks_match_sources():
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_notebooks.py"), "--check"],
        capture_output=True, text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


#: What a reader must never see in an output.
RAW_REPRS = ("np.float64(", "np.int64(", "array(")
#: Source text of a cell that draws a figure.
DRAWS = re.compile(r"\bplots\.fig|\bplt\.(subplots|figure|plot)\b|\.plot\(")
INLINE = "module://matplotlib_inline.backend_inline"
#: What a cell prints instead of its figure when the source lacks its data (the only excuse).
SKIPPED = re.compile(r"^no .+ in source ", re.M)


def _text(output) -> str:
    if output.output_type == "stream":
        return output.text
    return output.get("data", {}).get("text/plain", "") if "data" in output else ""


def notebook_problems(nb) -> list[str]:
    """What a reader would trip over in an executed notebook, one line per problem."""
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        outs = cell.get("outputs", [])
        where = f"cell {i} ({cell.source.splitlines()[0][:50] if cell.source else ''})"
        if DRAWS.search(cell.source) and not any(
            "image/png" in o.get("data", {}) for o in outs
        ) and not any(SKIPPED.search(_text(o)) for o in outs):
            problems.append(f"{where}: draws but shows no image")
        for o in outs:
            if o.output_type == "error":
                problems.append(f"{where}: error {o.ename}: {o.evalue}")
            elif o.output_type == "stream" and o.name == "stderr":
                problems.append(f"{where}: stderr {o.text[:200]!r}")
            text = _text(o)
            if "Traceback" in text:
                problems.append(f"{where}: traceback in output")
            for raw in RAW_REPRS:
                if raw in text:
                    problems.append(f"{where}: raw numpy repr {raw!r} in {text[:120]!r}")
    return problems


def _execute(path: Path, monkeypatch, source: str | None = None):
    """Execute a notebook as a reader does (the real inline backend); ``source`` replaces the
    value of its ``SOURCE = ...`` line. Returns the problems :func:`notebook_problems` finds,
    with figures left open, and the seconds it took."""
    pytest.importorskip("matplotlib_inline")
    for k in list(os.environ):   # no API key may be needed
        if k.endswith("_API_KEY"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("MPLBACKEND", INLINE)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    nb = nbformat.read(path, as_version=4)
    if source is not None:
        hits = [c for c in nb.cells if c.cell_type == "code" and SOURCE_LINE.search(c.source)]
        assert hits, f"{path.name} has no SOURCE line"
        for c in hits:
            c.source = SOURCE_LINE.sub(f"SOURCE = {source!r}", c.source)
    probe = "import matplotlib.pyplot as _plt\nprint('open figures:', len(_plt.get_fignums()))"
    nb.cells.append(nbformat.v4.new_code_cell(probe))
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    last = nb.cells.pop()
    problems = notebook_problems(nb)
    if "open figures: 0" not in _text(last.outputs[0]):
        problems.append(f"figures left open at the end: {_text(last.outputs[0]).strip()}")
    return nb, problems, seconds


SOURCE_LINE = re.compile(r'^SOURCE = "shipped".*$', re.M)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch):
    """Run as a reader does: the real inline backend, every output looked at."""
    _, problems, seconds = _execute(path, monkeypatch)
    print(f"{path.stem}: {seconds:.1f} s")
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("stem", [p.stem for p in NOTEBOOKS])
def test_notebook_runs_on_a_folder_of_the_letters_files(stem, tmp_path, monkeypatch):
    """``SOURCE`` a folder holding the Letter's four files (written as the data set holds
    them): the notebook reads them, says which file it drew from, and shows no problem."""
    import letter_files

    files = letter_files.write_all(tmp_path / "letter")
    nb, problems, _ = _execute(ROOT / "notebooks" / f"{stem}.ipynb", monkeypatch,
                               source=str(tmp_path / "letter"))
    assert not problems, "\n".join(problems)
    if stem in ("01_sampling", "02_transition_matrices"):
        text = "".join(_text(o) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
        assert files["gpt5nano"].name in text
