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
        nb, timeout=600, kernel_name="python3",
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


# --------------------------------------------------- the notebooks' data loading, in process
SKIP_LINE = re.compile(r"^no .+ in source ")


def _code_cells(stem: str) -> list[str]:
    """The code cells of ``notebooks/py/<stem>.py`` (percent format), in order."""
    parts = re.split(r"^(# %%.*)$", (ROOT / "notebooks" / "py" / f"{stem}.py").read_text(),
                     flags=re.M)
    return [body for head, body in zip(parts[1::2], parts[2::2], strict=True)
            if head.strip() == "# %%"]


def _run_until(stem: str, marker: str, source: str, capsys,
               subs: dict[str, str] | None = None) -> tuple[dict, str]:
    """Execute the code cells of a notebook source up to the first one containing ``marker``
    (its data loading), with ``SOURCE = source`` and the text replacements ``subs`` (e.g. a
    flag set as a reader would); the namespace and what it printed."""
    import matplotlib.pyplot as plt

    ns: dict = {"__name__": "__main__", "display": print}
    capsys.readouterr()
    for cell in _code_cells(stem):
        cell = SOURCE_LINE.sub(f"SOURCE = {source!r}", cell)
        for old, new in (subs or {}).items():
            cell = cell.replace(old, new)
        exec(compile(cell, f"{stem}.py", "exec"), ns)
        if marker in cell:
            break
    else:
        raise AssertionError(f"{stem}: no cell contains {marker!r}")
    plt.close("all")
    return ns, capsys.readouterr().out


def test_every_notebook_reads_sources_and_says_what_it_skips():
    for path in sorted((ROOT / "notebooks" / "py").glob("*.py")):
        text = path.read_text()
        assert SOURCE_LINE.search(text), f"{path.name}: no SOURCE line"
        assert "dbnb.sources.Sources(SOURCE)" in text, path.name
        for line in re.findall(r'print\(f?"(no [^"]*)', text):
            assert SKIP_LINE.match(line.replace("{SOURCE!r}", "'x'")), (path.name, line)


LOADING = [("00_overview", "fit = src.words_fit", "words", "gpt5nano"),
           ("05_action_as_scale", "fit = src.words_fit", "words", "gpt5nano"),
           ("06_symbolic_agent", "fit = src.symbolic_fit", "symbolic", "ideasearchfitter")]


@pytest.mark.parametrize("stem, marker, what, role", LOADING, ids=[x[0] for x in LOADING])
def test_notebook_loads_a_folder_of_the_letters_files(stem, marker, what, role, tmp_path,
                                                      capsys):
    """Offline: ``SOURCE`` a folder of test-written Letter files; the notebook draws from the
    file of its agent with the authors' convention, and a folder without that file makes it
    say so (``no ... in source ...``) and read the shipped run instead of failing."""
    import letter_files

    from dbnb.authors import convention

    files = letter_files.write_all(tmp_path / "letter")
    ns, _ = _run_until(stem, marker, str(tmp_path / "letter"), capsys)
    src, fit = ns["src"], ns["fit"]
    assert src.kind == "letter" and src.file_of(what) == files[role].name
    conv = convention(role)
    assert fit.transitions.method == conv.estimator
    assert conv.label in fit.transitions.counts.source
    only = tmp_path / "claude_only"
    only.mkdir()
    letter_files.write_claude(only)
    ns, out = _run_until(stem, marker, str(only), capsys)
    assert ns["src"].kind == "shipped"
    assert [ln for ln in out.splitlines() if SKIP_LINE.match(ln)], out


def test_overview_reads_claude_from_a_folder_that_has_the_file(tmp_path, capsys):
    """Notebook 00's Claude section: the authors' Claude file when SOURCE holds it (its name
    printed), the Letter's Table II otherwise; Eq. 22 either way for Table II's counts."""
    import letter_files

    only = tmp_path / "claude_only"
    only.mkdir()
    letter_files.write_claude(only)
    ns, out = _run_until("00_overview", "cfit = src.claude_fit", str(only), capsys)
    assert ns["src"].file_of("claude") == "word_database_claude-4.json"
    assert "word_database_claude-4.json" in out
    assert abs(ns["cfit"].potential["PERSONAL"] - 4.07) < 0.01
    ns, out = _run_until("00_overview", "cfit = src.claude_fit", "shipped", capsys)
    assert "claude4_table2.csv" in out and abs(ns["cfit"].potential["PERSONAL"] - 4.07) < 0.01


@pytest.mark.slow
@pytest.mark.local_llm
def test_sampling_notebook_live_cells_run_on_the_bundled_model(tmp_path, monkeypatch, capsys):
    """Notebook 01 with ``LIVE = True``, as a class would run it: 20 real calls to SmolLM2 taken
    to counts and a fit, replayed (not paid again) on a rerun, and the 5-word exact kernel at
    three temperatures, whose potential spreads as about 1/T."""
    pytest.importorskip("llama_cpp")
    import numpy as np

    monkeypatch.chdir(tmp_path)
    subs = {"LIVE = False ": "LIVE = True "}
    ns, out = _run_until("01_sampling", "word_logprob_kernels(", "shipped", capsys, subs)
    assert "LIVE is False" not in out and "beta V" in out and "T = 0.5" in out
    assert "beta V at T = 1" in out  # the temperature slider ran its function once
    recs, live = ns["recs"], ns["live"]
    assert len(recs) == 20 and not any(r.get("error") for r in recs)
    assert int(live.calls.sum()) == 20 and set(live.states) <= set(ns["five"])
    assert len(ns["scratch"]) == 20
    # a rerun replays every call from the scratch store: the model is never called again
    ns2, _ = _run_until("01_sampling", "live_fit = ", "shipped", capsys, subs)
    assert [r["reply"] for r in ns2["recs"]] == [r["reply"] for r in recs]
    assert len(ns2["scratch"]) == 20
    spread = {t: float(np.ptp(v.replace(np.inf, np.nan).dropna())) for t, v in ns["vs"].items()}
    assert spread["T = 0.5"] > spread["T = 1"] > spread["T = 2"] > 0, spread
