"""The app as people use it: Voila serves notebooks/lab.ipynb, headless Chromium drives it.

The app runs as `make lab` runs it (`python -m lab app`: Voila from the repository root, so
voila.json applies, one kernel preheated, and the training service whose worker trains what the
page asks). One test, three page loads (each a
fresh kernel): the first trains, stops, sweeps and fits;
the reloads train again and check that the figure still updates (a FigureWidget that stops
updating after a reload, or beside another one, is the known failure, plotly.py#4933). Tiny
configs come in through the link's query string. A second test opens the app in JupyterLab
with the file browser open and checks its layout at two widths. Screenshots land in
tests/artifacts/.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
TINY = "width=32&depth=1&heads=2&context=32&batch=8"

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                 reason=f"{CHROMIUM} is missing: install Debian's chromium (make chromium)")]

# What the page shows, read from plotly's graph div.
CURVE_POINTS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(el => el.data
    .filter(t => (t.xaxis || 'x') === 'x' && t.visible !== false)
    .reduce((n, t) => n + (t.x ? t.x.length : 0), 0))"""
TRACE_POINTS = """(name) => { const el = document.querySelector('.js-plotly-plot');
    const t = el.data.find(t => t.name === name); return t && t.x ? t.x.length : 0 }"""


# Controls of the form (and their readouts) whose box intersects the panel on the right.
NO_OVERLAP = """() => { const right = document.querySelector('.lab-right').getBoundingClientRect();
    return [...document.querySelectorAll('.lab-form .widget-inline-hbox, .lab-form .widget-readout')]
      .map(el => [el, el.getBoundingClientRect()])
      .filter(([el, b]) => b.width > 0 && b.right > right.left + 1 && b.left < right.right
                           && b.bottom > right.top + 1 && b.top < right.bottom)
      .map(([el, b]) => el.className + ' ' + (el.innerText || '').slice(0, 30)) }"""


def stop_process_group(proc: subprocess.Popen, grace_s: float = 15) -> None:
    """End a server started with start_new_session=True, and everything it started."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _server(tmp_path, name: str, args: list, ready: str, timeout: float, **env_extra):
    """A server (`python -m <args>`) started from the repository root with a store of its own,
    waited for until `ready` answers (any HTTP status counts), ended with everything it started.
    Yields its URL; its output goes to tmp_path/<name>.log."""
    port = _free_port()
    env = dict(os.environ, SCALING_LAB_STORE=str(tmp_path / "store"),
               SCALING_LAB_JAX_CACHE=os.environ["SCALING_LAB_JAX_CACHE"],   # conftest: <repo>/.pytest_cache/jax
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               **env_extra)
    for k in ("SCALING_LAB_QUICK", "QUERY_STRING"):
        env.pop(k, None)
    log_path = tmp_path / f"{name}.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", *args, f"--port={port}"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(url + ready, timeout=2)
                break
            except OSError as e:
                if getattr(e, "code", None):     # an HTTP error page: the server answers
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.3)
        yield url
    finally:
        stop_process_group(proc)
        log.close()


@pytest.fixture
def voila(tmp_path):
    """The app as `make lab` serves it (`python -m lab app`: Voila and the training service)."""
    with _server(tmp_path, "voila", ["lab", "app", "--store", str(tmp_path / "store")], "voila/static/", 90) as url:
        yield url, tmp_path / "voila.log"


def _wait(predicate, timeout: float, what: str, page=None, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    if page is not None:
        page.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _open(page, url: str) -> float:
    """Load the page; ready once the app is drawn and has applied the link's settings."""
    t0 = time.monotonic()
    page.goto(url, timeout=180_000)
    page.wait_for_selector("button.lab-train", timeout=180_000)
    page.wait_for_selector(".js-plotly-plot", timeout=60_000)
    page.wait_for_selector(".lab-notice:has-text('settings from the link')", timeout=60_000)
    return time.monotonic() - t0


def _status(page) -> str:
    return page.inner_text(".lab-status")


def _train_and_watch(page, *, stop: bool = False) -> list[int]:
    """Press Train and record the live curve's point count until the run ends (or Stop)."""
    curve = lambda: page.evaluate(CURVE_POINTS)[0]
    seen = [curve()]
    page.click("button.lab-train")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.25)
        n = curve()
        if n != seen[-1]:
            seen.append(n)
        if stop and len(seen) >= 3:                      # it has gained points twice: now stop it
            page.click("button.lab-stop")
            _wait(lambda: "cancelled" in _status(page), 60, "the run to end cancelled", page)
            time.sleep(0.8)                              # the last throttled redraw
            seen.append(curve())
            return seen
        if page.is_enabled("button.lab-train") and "·" in _status(page) and "step" not in _status(page):
            time.sleep(0.6)                              # the last throttled redraw
            seen.append(curve())
            return seen
    raise AssertionError(f"the run did not finish; status {_status(page)!r}, points {seen}")


def test_voila_app_trains_stops_sweeps_fits_and_keeps_updating_across_reloads(voila):
    from playwright.sync_api import sync_playwright
    url, log = voila
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))

            # load 1: a link sets a tiny model; the width is then changed on the page
            ready = _open(page, url + f"?{TINY}&tokens=2M")
            assert page.evaluate("() => document.querySelectorAll('.js-plotly-plot').length") == 1
            for width in (1000, 1400):                       # no control hidden under the plots or tabs
                page.set_viewport_size({"width": width, "height": 1100})
                time.sleep(1)
                page.screenshot(path=str(ARTIFACTS / f"voila-layout-{width}px.png"), full_page=True)
                assert page.evaluate(NO_OVERLAP) == [], width
            size = page.inner_text(".lab-readouts")
            readout = page.locator(".lab-width .widget-readout")
            readout.click()
            page.keyboard.press("Control+A")
            page.keyboard.type("16")
            page.keyboard.press("Enter")
            _wait(lambda: page.inner_text(".lab-readouts") != size, 30,
                  "the size readout to follow the width", page)
            page.click(".lm-TabBar-tab:has-text('Share')")             # (a tab's panel is built when opened)
            _wait(lambda: "width=16" in page.input_value(".lab-share-text input"), 30, "the share link", page)
            page.click(".lm-TabBar-tab:has-text('Sweep')")
            seen = _train_and_watch(page, stop=True)
            assert seen[-1] > seen[0] and len(set(seen)) >= 3, seen      # the live curve gained points
            page.screenshot(path=str(ARTIFACTS / "voila-1-trained-and-stopped.png"), full_page=True)

            # a sweep of three data sizes (a grid; the default plan is a ladder), then the law in D
            page.click(".lab-sweep-mode button:has-text('Grid')")
            page.fill(".lab-sweep-widths input", "16")
            page.fill(".lab-sweep-tokens input", "4096,8192,16384")
            _wait(lambda: "3 runs" in page.inner_text(".lab-sweep-plan"), 30, "the plan's cost", page)
            page.click("button.lab-sweep-run")
            _wait(lambda: "sweep finished" in page.inner_text(".lab-notice"), 180, "the sweep to finish", page)
            page.click(".lm-TabBar-tab:has-text('Scaling')")
            page.select_option(".lab-variable select", label="tokens D")
            equation = _wait(lambda: page.locator(".lab-equation").count() and page.inner_text(".lab-equation"), 60,
                             "the fitted equation", page)
            assert equation.startswith("L(D) = ")
            # the figure's update is its own message, drawn after the equation's (a busy machine: seconds later)
            _wait(lambda: page.evaluate(TRACE_POINTS, "fit") > 10, 30, "the fitted curve to be drawn", page)
            assert page.evaluate(TRACE_POINTS, "runs") == 3
            page.screenshot(path=str(ARTIFACTS / "voila-1-sweep-and-fit.png"), full_page=True)

            # reloads: fresh kernels; the stored runs come back and the figure keeps updating
            for k, extra in ((2, "&colour=red"), (3, "&seed=1")):
                ready_k = _open(page, url + f"?{TINY.replace('width=32', 'width=16')}&tokens=256k{extra}")
                assert page.evaluate("() => document.querySelectorAll('.js-plotly-plot').length") == 1
                _wait(lambda: page.evaluate(TRACE_POINTS, "runs") == 1 + k, 30, "the stored runs on the scaling plot",
                      page)
                if "colour" in extra:
                    _wait(lambda: page.locator(".lab-error").count() and "colour" in page.inner_text(".lab-error"),
                          30, "the bad link value reported", page)
                seen = _train_and_watch(page)
                assert seen[-1] > seen[0] and len(set(seen)) >= 2, (k, seen)
                _wait(lambda: page.evaluate(TRACE_POINTS, "runs") == 2 + k, 30,
                      "the new run on the scaling plot", page)
                page.screenshot(path=str(ARTIFACTS / f"voila-{k}-reload-trained.png"), full_page=True)
                if k == 3:                                   # the run table, and text from the model
                    page.click(".lm-TabBar-tab:has-text('Runs')")
                    _wait(lambda: page.locator("table.lab-runs tr").count() == 1 + 6, 30, "six runs in the table", page)
                    page.click(".lm-TabBar-tab:has-text('Sample text')")
                    page.click("button.lab-sample")
                    _wait(lambda: page.locator(".lab-sample-text").count()
                          and len(page.inner_text(".lab-sample-text")) > 50, 60, "sampled text", page)
                    page.screenshot(path=str(ARTIFACTS / "voila-3-sample.png"), full_page=True)
                print(f"page load {k}: ready in {ready_k:.1f} s, live points {seen}")

            # 简体中文 from the link, on a preheated kernel (built in English, then redrawn): controls,
            # the link's notice and a refused value in Chinese
            page.goto(url + f"?lang=zh&{TINY}&width=99999", timeout=180_000)
            page.wait_for_selector("button.lab-train", timeout=180_000)
            _wait(lambda: page.locator(".lab-notice").count() and "来自链接的设置" in page.inner_text(".lab-notice"),
                  60, "the link's notice in Chinese", page)
            assert "训练" in page.inner_text("button.lab-train") and "扫描" in page.inner_text(".lm-TabBar")
            _wait(lambda: page.locator(".lab-error").count() and "必须" in page.inner_text(".lab-error"), 30,
                  "the refused width, in Chinese", page)
            page.screenshot(path=str(ARTIFACTS / "voila-zh.png"), full_page=True)
            print(f"page load 1: ready in {ready:.1f} s")
            assert not errors, errors
        finally:
            browser.close()


@pytest.fixture
def jupyterlab(tmp_path):
    """JupyterLab on the repository, no token, the app instance exposed (to run all cells)."""
    with _server(tmp_path, "lab", ["jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                                   "--IdentityProvider.token=", "--ServerApp.password=",
                                   "--LabApp.expose_app_in_browser=True", "--ServerApp.disable_check_xsrf=True",
                                   "--allow-root", f"--ServerApp.root_dir={ROOT}"], "api", 90,
                 JUPYTER_CONFIG_DIR=str(tmp_path / "jcfg"), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "ws")) as url:
        yield url


def test_jupyterlab_app_layout_with_the_side_panel_open(jupyterlab):
    """The app inside JupyterLab, file browser open beside the notebook: at 1000 and 1400 px no
    control of the form sits under the plots (screenshots in tests/artifacts)."""
    from playwright.sync_api import sync_playwright
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(jupyterlab + "lab/tree/notebooks/lab.ipynb", timeout=180_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=180_000)
            kernel_ready = """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
                return !!k && k.connectionStatus === 'connected' && k.status === 'idle' }"""
            _wait(lambda: page.evaluate(kernel_ready), 180, "the notebook's kernel to be connected and idle", page)
            # commands return promises that settle when the command is done (or a dialog is answered):
            # start them without waiting, and look for what they draw
            run_all = "() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }"
            page.evaluate(run_all)
            try:
                page.wait_for_selector(".jp-OutputArea button.lab-train", timeout=90_000)
            except Exception:          # the kernel was not connected yet when the cells were sent: once more
                dialog = page.locator(".jp-Dialog .jp-mod-accept")
                if dialog.count():
                    dialog.first.click()
                page.evaluate(run_all)
                page.wait_for_selector(".jp-OutputArea button.lab-train", timeout=180_000)
            page.wait_for_selector(".jp-OutputArea .js-plotly-plot", timeout=60_000)
            if not page.is_visible(".jp-FileBrowser"):       # the side panel open, as a student has it
                page.evaluate("() => { window.jupyterapp.commands.execute('filebrowser:activate'); }")
            _wait(lambda: page.is_visible(".jp-FileBrowser"), 30, "the file browser", page)
            news = page.locator(".jp-toast-button:has-text('No')")     # JupyterLab's "notify me of news?" toast
            if news.count():
                news.first.click()
            for width in (1000, 1400):
                page.set_viewport_size({"width": width, "height": 1000})
                time.sleep(1.5)
                page.screenshot(path=str(ARTIFACTS / f"jupyterlab-layout-{width}px.png"))
                assert page.evaluate(NO_OVERLAP) == [], width
                # the form itself is not cut off by the notebook's panel
                clipped = page.evaluate("""() => { const nb = document.querySelector('.jp-NotebookPanel')
                    .getBoundingClientRect(); const f = document.querySelector('.lab-form').getBoundingClientRect();
                    return f.width > 0 && (f.left < nb.left - 1 || f.left > nb.right) }""")
                assert not clipped, width
        finally:
            browser.close()
