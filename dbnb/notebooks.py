"""Execute the notebooks and write executed HTML copies (``dbnb notebooks --html``).

A class can then read every notebook, figures included, in a browser without installing
anything. Execution uses :mod:`nbclient` and the export :mod:`nbconvert`, both of which come
with JupyterLab (a dependency of dbnb); images are embedded in the pages, links between the
notebooks point to their HTML copies, a link to a Markdown document of the repository (the
glossary, ``docs/glossary.md``) points to an HTML rendering of it written beside the pages, the
inline matplotlib backend is used whatever
``MPLBACKEND`` says, so every figure a reader would see is in the page, and the kernels import
the same dbnb as the command that runs them.

Formulas are typeset in the browser by MathJax, which nbconvert loads from a CDN
(:func:`mathjax_url`): no installed dependency ships a MathJax bundle that a page can load from a
file (JupyterLab's copy is split into webpack chunks of its own application). Offline, the
formulas show as their TeX source; every page says so in a note at its top.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NotebookRun", "find_notebooks", "mathjax_url", "notebooks_folder", "run_notebooks"]

#: The backend a reader's JupyterLab uses: figures are shown as images in the outputs.
INLINE = "module://matplotlib_inline.backend_inline"

_IPYNB_LINK = re.compile(r'href="([^"/:#]+)\.ipynb(#[^"]*)?"')
_MD_LINK = re.compile(r'href="([^"#:]+\.md)(#[^"]*)?"')


def mathjax_url() -> str:
    """Where the pages load MathJax from: nbconvert's default, a CDN (formulas need a
    network)."""
    from nbconvert import HTMLExporter

    return str(HTMLExporter().mathjax_url)

_MATH_NOTE = ('<p class="dbnb-math-note" style="font:90% sans-serif;color:#555;margin:0.5em 2em">'
              "Formulas are typeset by MathJax, loaded from {host}; without a network they "
              "show as their TeX source.</p>")


@dataclass(frozen=True)
class NotebookRun:
    """How one notebook went.

    ``path`` the notebook, ``html`` the page written (None without ``--html``), ``seconds``
    the execution time, ``error`` ``None`` or what failed (the cell and the exception),
    ``images`` the number of figures in its outputs.
    """

    path: Path
    html: Path | None
    seconds: float
    error: str | None
    images: int

    @property
    def ok(self) -> bool:
        return self.error is None


def notebooks_folder() -> Path:
    """The repository's ``notebooks/`` folder (beside the package in a source checkout)."""
    here = Path(__file__).resolve().parent.parent / "notebooks"
    if not here.is_dir():
        raise FileNotFoundError(
            f"no notebooks folder at {here}: the notebooks ship with the repository, not the "
            "wheel; clone it (pip install -e .) or pass --notebooks DIR")
    return here


def find_notebooks(folder: Path, only: Sequence[str] | None = None) -> list[Path]:
    """The ``*.ipynb`` files of ``folder`` in name order; ``only`` keeps those whose name
    starts with one of its entries (``["00", "04"]``, ``["02_transition"]``).

    Raises
    ------
    FileNotFoundError
        When the folder holds no notebook, or ``only`` selects none (the names are listed).
    """
    paths = sorted(Path(folder).glob("*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no notebooks (*.ipynb) in {folder}")
    if only:
        chosen = [p for p in paths if any(p.stem.startswith(s) for s in only)]
        if not chosen:
            raise FileNotFoundError(
                f"--only {','.join(only)} selects none of {', '.join(p.stem for p in paths)}")
        paths = chosen
    return paths


@contextmanager
def _kernel_env() -> Iterator[None]:
    """The kernels' environment: the inline backend, and this dbnb first on the path (a
    relative or stale ``PYTHONPATH`` would otherwise give the kernel, which runs in the
    notebook's folder, another copy of the package)."""
    here = str(Path(__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    new = {"MPLBACKEND": INLINE,
           "PYTHONPATH": os.pathsep.join([here, *([path] if path else [])])}
    old = {k: os.environ.get(k) for k in new}
    os.environ.update(new)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _images(nb) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
               for o in c.get("outputs", []))


def _first_error(nb) -> str | None:
    for i, cell in enumerate(nb.cells):
        for o in cell.get("outputs", []) if cell.cell_type == "code" else ():
            if o.output_type == "error":
                return f"cell {i}: {o.ename}: {o.evalue}"
    return None


def _export(nb, name: str) -> str:
    """The lab-template HTML page of ``nb``, with the MathJax note after ``<body>``."""
    from urllib.parse import urlsplit

    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": name}})
    url = str(exporter.mathjax_url)
    if urlsplit(url).scheme in ("http", "https"):
        note = _MATH_NOTE.format(host=urlsplit(url).netloc)
        body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + note, body, count=1)
    return body


def _markdown_page(path: Path) -> str:
    """An HTML page of the Markdown file ``path``, styled and typeset as the notebooks."""
    import nbformat

    text = path.read_text(encoding="utf-8")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text)])
    return _export(nb, path.stem)


def _html(nb, name: str, folder: Path, html_dir: Path, documents: dict[Path, str]) -> str:
    """The page of the executed notebook ``nb`` (from ``folder``): links between notebooks go
    to their HTML copies, links to Markdown files that exist to their renderings (written into
    ``html_dir`` once, recorded in ``documents``); other links are left as they are."""

    def document(m: re.Match) -> str:
        target = (folder / m.group(1)).resolve()
        if not target.is_file():
            return m.group(0)
        if target not in documents:
            documents[target] = f"{target.stem}.html"
            (html_dir / documents[target]).write_text(_markdown_page(target), encoding="utf-8")
        return f'href="{documents[target]}{m.group(2) or ""}"'

    body = _export(nb, name)
    body = _IPYNB_LINK.sub(lambda m: f'href="{m.group(1)}.html{m.group(2) or ""}"', body)
    return _MD_LINK.sub(document, body)


def run_notebooks(
    paths: Sequence[Path],
    *,
    html_dir: Path | None = None,
    timeout: int = 600,
    report: Callable[[str], None] = print,
) -> list[NotebookRun]:
    """Execute each notebook top to bottom (in its own folder, a fresh kernel each) and,
    with ``html_dir``, write its executed copy ``html_dir/<name>.html``.

    Parameters
    ----------
    paths : sequence of Path
        Notebooks (:func:`find_notebooks`).
    html_dir : Path, optional
        Where the pages go (created). A notebook that fails still gets its page, showing the
        error where it happened. A Markdown file a notebook links to (``../docs/glossary.md``)
        is rendered to ``html_dir/<name>.html`` and the link rewritten.
    timeout : int
        Seconds any one cell may take.
    report : callable
        Receives one line per notebook as it starts and as it ends (progress).

    Returns
    -------
    list of NotebookRun
        One per notebook, in order; a failure is recorded and the next notebook runs.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    if html_dir is not None:
        html_dir = Path(html_dir)
        html_dir.mkdir(parents=True, exist_ok=True)
    runs = []
    documents: dict[Path, str] = {}
    if html_dir is not None and mathjax_url().startswith(("http:", "https:")):
        report(f"note: the pages load MathJax from {mathjax_url()}; without a network their "
               "formulas show as TeX source")
    for k, path in enumerate(paths, 1):
        path = Path(path)
        report(f"[{k}/{len(paths)}] {path.stem} ...")
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        start = time.perf_counter()
        error = None
        with _kernel_env():
            try:
                client.execute()
            except CellExecutionError:
                error = _first_error(nb) or "a cell failed"
            except (CellTimeoutError, DeadKernelError) as exc:
                error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        seconds = time.perf_counter() - start
        page = None
        if html_dir is not None:
            page = html_dir / f"{path.stem}.html"
            page.write_text(_html(nb, path.stem, path.parent, html_dir, documents),
                            encoding="utf-8")
        run = NotebookRun(path=path, html=page, seconds=seconds, error=error,
                          images=_images(nb))
        runs.append(run)
        where = f" -> {page}" if page else ""
        status = "ok" if run.ok else f"FAILED at {error}"
        report(f"[{k}/{len(paths)}] {path.stem}: {status}, {seconds:.1f} s, "
               f"{run.images} figures{where}")
    return runs
