"""The notebooks' charts need nothing from another host: BokehJS, Panel's JS and its
styles are inside the notebook's outputs, so they render offline and in an exported
HTML copy.

Each notebook's own extension lines run in a kernel (this interpreter, as in
``test_notebooks.py``) with a small chart shown the way the notebooks show theirs
(``pn.panel``); the outputs, put in one HTML page as an export does (``text/html`` as
is, ``application/javascript`` as scripts), are opened in Chromium with every request
to another host refused and recorded. The plain ``hv.extension("bokeh")`` the notebooks
used before is the control: its chart needs the CDN.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("playwright.sync_api")
from app_harness import chromium
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from test_notebooks import KERNEL_NAME, NOTEBOOKS, kernel_dir  # noqa: F401 (a fixture)

CHARTS = [p for p in NOTEBOOKS if "import holoviews" in p.read_text()]
EXTENSION = ("import holoviews", "import panel", "hv.extension(", "pn.extension(")


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def _extension_lines(path: Path) -> str:
    """The notebook's imports of HoloViews / Panel and its extension calls."""
    lines = [ln for src in _code(nbformat.read(path, as_version=4))
             for ln in src.splitlines() if ln.startswith(EXTENSION)]
    assert any(ln.startswith("hv.extension(") for ln in lines), path.name
    return "\n".join(lines)


def _page(kernels: Path, setup: str, show: str) -> str:
    """An HTML export of a two-cell notebook: ``setup``, then ``show``."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(setup), nbformat.v4.new_code_cell(show)]
    ksm = KernelSpecManager(kernel_dirs=[str(kernels)])
    km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm)
    nbclient.NotebookClient(nb, km=km, kernel_name=KERNEL_NAME, timeout=120).execute()
    parts = []
    for out in (o for c in nb.cells for o in c.outputs):
        data = out.get("data", {})
        if "text/html" in data:
            parts.append(data["text/html"])
        elif "application/javascript" in data:
            parts.append(f"<script>{data['application/javascript']}</script>")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
            + "\n".join(parts) + "</body></html>")


def _open_offline(html: str, tmp_path: Path) -> tuple[bool, list[str]]:
    """Whether the page draws a chart with the network cut off (waiting for the page to
    settle, then for a canvas), and what it asked for elsewhere."""
    page_file = tmp_path / "export.html"
    page_file.write_text(html)
    refused: list[str] = []

    def route(r) -> None:
        if r.request.url.split(":", 1)[0] in ("file", "data", "blob"):
            r.continue_()
        else:
            refused.append(r.request.url)
            r.abort()

    with chromium() as browser:
        page = browser.new_page()
        page.route("**/*", route)
        page.goto(page_file.as_uri(), wait_until="networkidle")
        try:
            page.locator("canvas").first.wait_for(state="visible",
                                                  timeout=2_000 if refused else 20_000)
            drawn = True
        except PlaywrightTimeout:  # no chart drawn
            drawn = False
    return drawn, refused


def test_every_chart_cell_shows_its_chart_through_pn_panel() -> None:
    """A cell using HoloViews that ends with an expression other than a name or a
    ``print`` shows a chart: through ``pn.panel(...)`` (which inlines Panel's styles)."""
    assert CHARTS
    for path in CHARTS:
        for src in _code(nbformat.read(path, as_version=4)):
            body = ast.parse(src).body
            if "hv." not in src or not body or not isinstance(body[-1], ast.Expr):
                continue
            last = body[-1].value
            if isinstance(last, ast.Name | ast.Constant):
                continue
            called = ast.unparse(last.func) if isinstance(last, ast.Call) else ""
            assert called in ("pn.panel", "print"), f"{path.name}: {ast.unparse(last)[:80]}"


@pytest.mark.parametrize("path", CHARTS, ids=[p.name for p in CHARTS])
def test_notebook_charts_render_offline(path: Path, kernel_dir: Path,  # noqa: F811
                                        tmp_path: Path) -> None:
    html = _page(kernel_dir, _extension_lines(path),
                 "pn.panel(hv.Curve([1, 3, 2]) + hv.Scatter([1, 2]))")
    drawn, refused = _open_offline(html, tmp_path)
    assert refused == [] and drawn


def test_plain_extension_charts_need_the_cdn(kernel_dir: Path,  # noqa: F811
                                             tmp_path: Path) -> None:
    html = _page(kernel_dir, 'import holoviews as hv\nhv.extension("bokeh")',
                 "hv.Curve([1, 3, 2])")
    drawn, refused = _open_offline(html, tmp_path)
    assert not drawn and any("cdn.bokeh.org" in u for u in refused)
