#!/usr/bin/env python3
"""Refresh the README's screenshot gallery (``docs/screenshots/``, section "Gallery").

- The explorer: ``notebooks/01_explorer.ipynb`` run in JupyterLab on 127.0.0.1 and
  photographed in headless Chromium (the machinery of ``tests/test_browser.py``).
- Each notebook's main figure, read from the notebook's stored outputs (no notebook is
  run): the ``image/png`` output of the cell tagged ``gallery`` (cell metadata
  ``"tags": ["gallery"]``, or a ``"gallery"`` metadata key whose value may be a caption
  string or ``{"caption": ..., "output": n}`` for the n-th image of the cell). A
  notebook with no tagged cell gives its first figure, unless ``--tagged-only``.

Every image is written small (at most ``--max-kb``, 120 kB by default: scaled down and,
if needed, reduced to 256 colours) and the README section between the gallery markers is
rewritten to list them.

    .venv/bin/python tools/gallery.py [--no-explorer] [--tagged-only] [--max-kb 120]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
README = ROOT / "README.md"
BEGIN = "<!-- gallery: begin (written by tools/gallery.py; do not edit by hand) -->"
END = "<!-- gallery: end -->"
#: Widest image kept [px]: enough to read a figure in the README.
MAX_WIDTH = 900


def small_png(png: bytes, max_kb: float, max_width: int = MAX_WIDTH) -> bytes:
    """``png`` scaled to at most ``max_width`` pixels wide and at most ``max_kb``
    kilobytes: full colour if that fits, else 256 colours, else narrower."""
    from PIL import Image

    img = Image.open(io.BytesIO(png))
    img = img.convert("RGBA") if "A" in img.getbands() else img.convert("RGB")
    if img.mode == "RGBA":  # the README's background is white
        flat = Image.new("RGB", img.size, "white")
        flat.paste(img, mask=img.getchannel("A"))
        img = flat
    width = min(max_width, img.width)
    while True:
        im = img if width == img.width else img.resize(
            (width, round(img.height * width / img.width)), Image.LANCZOS)
        # fast octree keeps the few saturated colours (markers, masks) of a mostly grey
        # picture that a median cut would merge into the greys
        for candidate in (im, im.quantize(256, method=Image.FASTOCTREE, dither=Image.NONE)):
            buf = io.BytesIO()
            candidate.save(buf, "png", optimize=True)
            if buf.tell() <= max_kb * 1000:
                return buf.getvalue()
        if width < 200:
            raise ValueError(f"cannot make the image fit {max_kb} kB")
        width = int(width * 0.8)


def _first_heading(nb: dict) -> str:
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return ""


def notebook_figure(path: Path, tagged_only: bool = False):
    """``(png bytes, caption, how it was chosen)`` of a notebook's main figure, from
    its stored outputs, or None when it has none."""
    nb = json.loads(path.read_text())
    first = None
    for cell in nb["cells"]:
        images = [o["data"]["image/png"] for o in cell.get("outputs", [])
                  if "image/png" in o.get("data", {})]
        if not images:
            continue
        meta = cell.get("metadata", {})
        mark = meta.get("gallery")
        tagged = "gallery" in meta.get("tags", []) or mark not in (None, False)
        caption = mark if isinstance(mark, str) else (
            mark.get("caption") if isinstance(mark, dict) else None)
        n = int(mark.get("output", 0)) if isinstance(mark, dict) else 0
        png = images[min(n, len(images) - 1)]
        png = base64.b64decode("".join(png) if isinstance(png, list) else png)
        if tagged:
            return png, caption or _first_heading(nb), "cell tagged 'gallery'"
        if first is None:
            first = (png, _first_heading(nb), "first figure (no cell tagged 'gallery')")
    return None if tagged_only else first


def explorer_screenshot() -> bytes:
    """The explorer of ``notebooks/01_explorer.ipynb`` in JupyterLab, as Chromium
    draws it after Run All (PNG)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from lab_browser import (
        CHROMIUM,
        chromium_page,
        dismiss_news,
        jupyter_lab,
        open_notebook,
        painter_image,
        run_all,
        wait_update,
    )
    from playwright.sync_api import sync_playwright

    if CHROMIUM is None:
        raise RuntimeError("Debian's chromium is not installed (python3 dev.py test installs "
                           "it when run as root); use --no-explorer")
    work = Path(tempfile.mkdtemp(prefix="tdm-gallery-"))
    try:
        shutil.copy(ROOT / "notebooks" / "01_explorer.ipynb", work)
        with jupyter_lab(work) as (url, token), sync_playwright() as pw, \
                chromium_page(pw, width=1500, height=2000) as (page, _):
            open_notebook(page, url, token, "01_explorer.ipynb")
            run_all(page)
            wait_update(page, 1)
            page.get_by_text(re.compile(r"PCC vs angle \(Fig 2d\)")).first.wait_for(
                timeout=120_000)
            dismiss_news(page)
            page.wait_for_timeout(1500)  # the last bitmaps decoded and painted
            # the explorer's output area: painter, controls, masks, images, table
            area = page.locator(".jp-OutputArea-output").filter(has=painter_image(page))
            area.first.scroll_into_view_if_needed()
            return area.first.screenshot()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def readme_section(items) -> str:
    """Markdown listing the gallery: two images a row, each with its caption."""
    cells = [f'<img src="docs/screenshots/{name}" width="420" alt="{caption}"><br>'
             f"<b>{label}</b>: {caption}" for name, label, caption in items]
    rows = ["<table>"]
    for i in range(0, len(cells), 2):
        pair = cells[i:i + 2] + [""] * (2 - len(cells[i:i + 2]))
        rows.append("<tr>" + "".join(f'<td valign="top">{c}</td>' for c in pair) + "</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def update_readme(section: str) -> None:
    """Rewrite the README's gallery (heading included) between the markers, or add it
    before "## Notebooks"."""
    text = README.read_text()
    block = (f"{BEGIN}\n## Gallery\n\nThe explorer in JupyterLab (headless Chromium) and "
             "each notebook's main figure\n(the cell tagged `gallery`, else its first "
             "figure), refreshed by\n`.venv/bin/python tools/gallery.py` from the notebooks' "
             "stored outputs (images in\n`docs/screenshots/`, at most 120 kB each).\n\n"
             f"{section}\n{END}")
    if BEGIN in text and END in text:
        a, b = text.index(BEGIN), text.index(END) + len(END)
        text = text[:a] + block + text[b:]
    else:
        at = text.find("## Notebooks")
        text = (text[:at] + block + "\n\n" + text[at:] if at >= 0
                else text.rstrip() + "\n\n" + block + "\n")
    README.write_text(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-explorer", action="store_true",
                    help="keep the explorer screenshot there is (no browser run)")
    ap.add_argument("--tagged-only", action="store_true",
                    help="only cells tagged 'gallery' (no first-figure fallback)")
    ap.add_argument("--max-kb", type=float, default=120.0)
    args = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    items = []
    explorer = OUT / "01_explorer.png"
    if not args.no_explorer:
        explorer.write_bytes(small_png(explorer_screenshot(), args.max_kb))
        print(f"{explorer.relative_to(ROOT)}: {explorer.stat().st_size / 1e3:.0f} kB "
              f"(screenshot)")
    if explorer.exists():
        items.append((explorer.name, "01_explorer",
                      "the explorer on the bundled LiFePO4 (JupyterLab, headless Chromium)"))
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        if nb.stem == "01_explorer":
            continue
        found = notebook_figure(nb, args.tagged_only)
        if found is None:
            stale = OUT / f"{nb.stem}.png"
            if stale.exists():
                stale.unlink()
            print(f"{nb.name}: no figure")
            continue
        png, caption, how = found
        out = OUT / f"{nb.stem}.png"
        out.write_bytes(small_png(png, args.max_kb))
        print(f"{out.relative_to(ROOT)}: {out.stat().st_size / 1e3:.0f} kB ({how})")
        items.append((out.name, nb.stem, caption))
    update_readme(readme_section(items))
    print(f"README.md: gallery of {len(items)} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
