"""JupyterLab on 127.0.0.1 driven by Debian's Chromium through Playwright: shared by
``tests/test_browser.py`` and ``benchmarks/bench_browser.py``.

The page is instrumented before any script runs: every change of an SVG ``<image>``
source (how bqplot's Image mark draws a new PNG) is time-stamped with
``performance.now()``, as is every pointer press, so a latency is measured as the
page sees it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]

#: Time stamps of image redraws, pointer presses and kernel messages, kept in the page.
INSTRUMENT_JS = """
window.__tdm = {draws: [], presses: [], received: [], sent: [], longtasks: []};
// tasks that kept the page's main thread busy for over 50 ms: [start, duration]
try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__tdm.longtasks.push([e.startTime, e.duration]);
  }).observe({entryTypes: ['longtask']});
} catch (e) {}
new MutationObserver((records) => {
  const t = performance.now();
  for (const r of records) {
    if (r.target.tagName === 'image' && r.attributeName === 'href') {
      window.__tdm.draws.push(t);
    }
  }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ['href']});
// the first bitmap in the page (an <image> with a source, added or changed)
const firstImage = new MutationObserver(() => {
  if (document.querySelector('.bqplot image[href]')) {
    window.__tdm.firstImage = performance.now();
    firstImage.disconnect();
  }
});
firstImage.observe(document, {subtree: true, childList: true, attributes: true,
                              attributeFilter: ['href']});
document.addEventListener('pointerdown', () => window.__tdm.presses.push(performance.now()),
                          true);
// every kernel websocket message: arrival time and size [bytes] (sent: time only)
const NativeWebSocket = window.WebSocket;
class CountingWebSocket extends NativeWebSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener('message', (e) => {
      const d = e.data;
      window.__tdm.received.push([performance.now(),
                                  d.byteLength || d.size || d.length || 0]);
    });
  }
  send(data) {
    window.__tdm.sent.push(performance.now());
    return super.send(data);
  }
}
window.WebSocket = CountingWebSocket;
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def jupyter_lab(root: Path, token: str = "tdm-test-token", env: dict | None = None):
    """A JupyterLab server on 127.0.0.1 serving ``root`` (its kernels get ``env``
    added to this process's environment); yields its URL."""
    port = free_port()
    env = dict(os.environ, **(env or {}), JUPYTER_CONFIG_DIR=str(root / ".jupyter"),
               JUPYTER_RUNTIME_DIR=str(root / ".runtime"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", "--ServerApp.allow_root=True"],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError("JupyterLab did not start")
        yield url, token
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def chromium_page(pw, width: int = 1700, height: int = 1400):
    """A page in a fresh Chromium profile, instrumented; yields ``(page, errors)``
    where ``errors`` collects page errors and console errors."""
    profile = tempfile.mkdtemp(prefix="tdm-chromium-")
    ctx = pw.chromium.launch_persistent_context(
        profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
        viewport={"width": width, "height": height})
    errors = []
    try:
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        page.add_init_script(INSTRUMENT_JS)
        page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
        page.on("console", lambda m: errors.append(f"console: {m.text}")
                if m.type == "error" else None)
        yield page, errors
    finally:
        ctx.close()
        shutil.rmtree(profile, ignore_errors=True)


def real_errors(errors):
    """Errors other than failed resource fetches (the network is closed here)."""
    return [e for e in errors if "Failed to load resource" not in e and "net::ERR" not in e]


def open_notebook(page, url: str, token: str, name: str) -> None:
    """Open a notebook and wait until its kernel is idle."""
    page.goto(f"{url}/lab/tree/{name}?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=180_000)
    page.get_by_text(re.compile(r"\|\s*Idle")).last.wait_for(timeout=180_000)


def dismiss_news(page) -> None:
    """Close JupyterLab's "notified about official Jupyter news?" toast if it shows (it
    would cover a corner of a screenshot)."""
    toast = page.locator(".jp-toast-button").filter(has_text=re.compile(r"^\s*No\s*$"))
    try:
        toast.first.click(timeout=2000)
    except Exception:  # noqa: BLE001 - no toast: nothing to close
        pass


def run_all(page) -> float:
    """Run All Cells; returns the page time [ms] when it was clicked."""
    page.get_by_role("menuitem", name="Run", exact=True).click()
    item = page.get_by_text("Run All Cells", exact=True)
    t = page.evaluate("performance.now()")
    item.click()
    return t


def wait_update(page, n: int, timeout_ms: int = 180_000) -> str:
    """Wait for the explorer's status "update n: ..." and return its text."""
    loc = page.get_by_text(re.compile(rf"update {n}: \d+ ms"))
    loc.wait_for(timeout=timeout_ms)
    return loc.inner_text()


def painter_image(page):
    """The painter's bitmap (the first bqplot image of the page)."""
    return page.locator(".bqplot image").first


def pixel_point(page, shape, row: float, col: float):
    """Page coordinates of the centre of scan pixel (row, col) on the painter."""
    box = painter_image(page).bounding_box()
    return (box["x"] + (col + 0.5) * box["width"] / shape[1],
            box["y"] + (row + 0.5) * box["height"] / shape[0])


def draw_latency(page, settle_s: float = 0.6, limit_s: float = 60.0) -> float:
    """Time [ms] from the last pointer press to the last image redraw after it, once
    no redraw has come for ``settle_s``."""
    return click_breakdown(page, settle_s, limit_s)["latency_ms"]


def click_breakdown(page, settle_s: float = 0.6, limit_s: float = 60.0) -> dict:
    """Where the time of the last click went, as the page saw it, once no redraw has
    come for ``settle_s``: ``latency_ms`` (press to the last image redrawn),
    ``first_message_ms`` (press to the first kernel message after it),
    ``first_send_ms`` (press to the first message the page sent the kernel),
    ``last_message_ms`` (press to the last kernel message before the last redraw),
    ``messages`` and ``bytes`` received in between, ``redraws``, ``busy_page_ms`` (the
    part of it the page's main thread spent in tasks over 50 ms), and the press and the
    last redraw as epoch milliseconds (to set beside a kernel's time line)."""
    last, t0 = -1, time.monotonic()
    while True:
        n = page.evaluate("window.__tdm.draws.length")
        if n == last:
            break
        if time.monotonic() - t0 > limit_s:
            raise RuntimeError(f"images kept being redrawn for {limit_s} s ({n} redraws)")
        last = n
        time.sleep(settle_s)
    press, draws, received, sent, origin, longtasks = page.evaluate(
        "[window.__tdm.presses.at(-1), window.__tdm.draws, window.__tdm.received, "
        "window.__tdm.sent, performance.timeOrigin, window.__tdm.longtasks]")
    after = [d for d in draws if d > press]
    if not after:
        raise RuntimeError("no image was redrawn after the click")
    end = max(after)
    msgs = [(t, b) for t, b in received if press < t <= end]
    out = [t for t in sent if t > press]
    return {"latency_ms": end - press,
            "first_send_ms": (out[0] - press) if out else float("nan"),
            "first_message_ms": (msgs[0][0] - press) if msgs else float("nan"),
            "last_message_ms": (msgs[-1][0] - press) if msgs else float("nan"),
            "messages": len(msgs), "bytes": sum(b for _, b in msgs),
            "redraws": len(after), "press_epoch_ms": origin + press,
            "busy_page_ms": sum(min(s + d, end) - max(s, press) for s, d in longtasks
                                if s < end and s + d > press),
            "end_epoch_ms": origin + end}
