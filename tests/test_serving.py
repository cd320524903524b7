"""The served app as a deployment: `scaling-lab app` exposes the app and nothing else; a worker or a
page's kernel killed mid-run loses nothing; closed pages and reloads leave no kernels behind; a
class trains at once; two pages never lose each other's runs; a teacher and two students share one worker
(queue places, one shared run, names as text, Delete refused to a student)."""

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from test_browser import (ARGS, ARTIFACTS, CHROMIUM, CURVE_POINTS, TINY, _free_port, _open, _train_and_watch, _wait,
                          stop_process_group)

ROOT = Path(__file__).resolve().parents[1]
RELOADS = 4          # each starts a kernel: a leak leaves more than 2 alive after the cull
CLASS_SESSIONS = 4   # the suite's class; bench/bench_class.py loads thirty


@pytest.fixture
def start_app(tmp_path):
    """Start `python -m lab app` exactly as `make lab` runs it, on a free port, with a fresh store."""
    procs = []

    def start(*extra, env_extra=None):
        port = _free_port()
        store = tmp_path / f"store{len(procs)}"
        env = dict(os.environ, PYTHONPATH=str(ROOT), **(env_extra or {}))
        for k in ("SCALING_LAB_QUICK", "QUERY_STRING"):
            env.pop(k, None)
        log = open(tmp_path / f"app{len(procs)}.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "lab", "app", "--port", str(port), "--store", str(store),
                                 *extra], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        procs.append((proc, log))
        url = f"http://127.0.0.1:{port}"
        _wait(lambda: _code(url + "/") == 200 or proc.poll() is not None, 120, "the app to answer")
        assert proc.poll() is None, (tmp_path / f"app{len(procs) - 1}.log").read_text()[-2000:]
        return url, store

    yield start
    for proc, log in procs:
        stop_process_group(proc)
        log.close()


@pytest.fixture
def app(start_app):
    return start_app()


def _code(url: str, method: str = "GET") -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


@pytest.mark.slow
def test_the_served_app_exposes_nothing_else(app):
    url, _ = app
    assert _code(url + "/") == 200
    # no Jupyter API, file browser, terminal, other notebook or file from the repository
    for path in ("/api/contents", "/api/kernels", "/api/sessions", "/api/terminals", "/tree", "/lab", "/files/README.md",
                 "/voila/files/pyproject.toml", "/voila/files/notebooks/lab.ipynb", "/voila/files/..%2Fpyproject.toml",
                 "/voila/render/README.md", "/voila/tree", "/notebooks/lesson1_power_laws.ipynb"):
        assert _code(url + path) in (403, 404, 405), path
    assert _code(url + "/api/kernels", "POST") in (403, 404, 405)


def _kernels_of(store: Path) -> list[int]:
    """Kernel processes started for this app (they carry its store in their environment)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes()
            env = (d / "environ").read_bytes()
        except OSError:
            continue
        if b"ipykernel" in cmd and f"SCALING_LAB_STORE={store}".encode() in env:
            pids.append(int(d.name))
    return pids


def _page_kernels(store: Path) -> list[int]:
    """The kernel processes of the pages registered in the store (the page's own kernel)."""
    from lab.runqueue import RunQueue
    from lab.store import RunStore
    return [int(p.owner.split("|")[2]) for p in RunQueue(RunStore(store)).pages() if p.beat is not None]


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing")
def test_sigkill_of_a_worker_or_a_page_kernel_mid_run_loses_nothing(app):
    """A worker killed mid-run: its run goes back to the queue, is trained again and stored once,
    and the page that asked for it sees it done. A page's kernel killed mid-run: nobody waits for
    the run any more, so the service stops it (kept, cancelled)."""
    from playwright.sync_api import sync_playwright

    from lab.store import RunStore
    url, store_dir = app
    store = RunStore(store_dir)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            _open(page, url + f"/?{TINY.replace('width=32', 'width=16')}&tokens=2M")
            page.click("button.lab-train")
            _wait(lambda: store.records() and store.records()[0].status == "running"
                  and len(store.curve_points(store.records()[0].run_id)) >= 2, 120, "the run to train", page)
            (run,) = store.records()
            worker = int(run.owner.split("|")[2])
            os.kill(worker, signal.SIGKILL)                          # the worker dies mid-run
            _wait(lambda: store.record(run.run_id).status == "done", 240, "the run to be trained again", page)
            _wait(lambda: page.is_enabled("button.lab-train") and "done" in page.inner_text(".lab-status"), 60,
                  "the page to see it done", page)
            rec = store.record(run.run_id)
            assert rec.attempts == 2 and [r.run_id for r in store.records()] == [run.run_id]

            _open(page, url + f"/?{TINY}&tokens=50M&seed=3")         # then a long run, its page's kernel killed
            page.click("button.lab-train")
            _wait(lambda: any(r.status == "running" for r in store.records()), 120, "the long run to start", page)
            kernels = _page_kernels(store_dir)
            assert kernels
            for pid in kernels:
                os.kill(pid, signal.SIGKILL)
            _wait(lambda: {r.status for r in store.records()} == {"done", "cancelled"}, 60,
                  "the service to stop the run nobody waits for")
        finally:
            browser.close()
    assert store.integrity() == "ok"
    assert sorted(r.status for r in store.records()) == ["cancelled", "done"]


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing")
def test_a_job_stops_when_its_page_is_gone_and_reloads_do_not_pile_up_kernels(start_app, tmp_path):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    from lab.store import RunStore
    url, store_dir = start_app("--cull-idle", "6", env_extra={"SCALING_LAB_PAGE_TIMEOUT": "8"})
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            _open(page, url + f"/?{TINY}&tokens=50M")
            page.click("button.lab-train")
            store = RunStore(store_dir)
            _wait(lambda: "running" in set(store.table().status), 120, "the run to start", page)
            (run,) = store.records()
            _wait(lambda: _page_kernels(store_dir), 30, "the page's heartbeat")
            (kernel,) = _page_kernels(store_dir)                    # the page's kernel (workers train)
            assert kernel in _kernels_of(store_dir)
            # The student closes the tab. Its kernel goes: shut down by Voila on the page's unload
            # beacon or, where the beacon is lost (here, always), the heartbeat's silence (8 s)
            # withdraws its run (nobody else waits: the worker stops it) and the culler (6 s idle)
            # ends the kernel; the service drops whatever a dead kernel still asked for.
            page.close(run_before_unload=True)
            t_close = time.monotonic()
            _wait(lambda: kernel not in _kernels_of(store_dir), 60, "the page's kernel to be shut down")
            print(f"the closed page's kernel was gone after {time.monotonic() - t_close:.1f} s")
            _wait(lambda: store.record(run.run_id).status == "cancelled", 60, "the closed page's run to stop")
            t0 = time.monotonic()
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            stuck = []
            for i in range(RELOADS):                                # reloads, each once the app is drawn
                try:
                    page.goto(url + f"/?{TINY}", timeout=90_000)
                    page.wait_for_selector("button.lab-train", timeout=90_000)
                except PlaywrightTimeout:                           # once in ~10 runs a reload never drew:
                    stuck.append(i)                                 # say so with the server's log, reload again
                    page.screenshot(path=str(ARTIFACTS / "reload-stuck.png"), full_page=True)
                    print(f"reload {i} not drawn after 90 s; kernels {len(_kernels_of(store_dir))}; server log:\n"
                          + (tmp_path / "app0.log").read_text(errors="replace")[-3000:])
                    page.goto(url + f"/?{TINY}", timeout=180_000)
                    page.wait_for_selector("button.lab-train", timeout=180_000)
            assert len(stuck) <= 1, f"reloads {stuck} were not drawn within 90 s"
            counts = []
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                counts.append(len(_kernels_of(store_dir)))
                if counts[-1] <= 2:                                 # this page's kernel and the preheated one
                    break
                time.sleep(3)
            print(f"kernels after {RELOADS} reloads, every 3 s: {counts} ({time.monotonic() - t0:.0f} s)")
            assert counts[-1] <= 2, counts
            page.goto(url + f"/?{TINY}", timeout=180_000)             # and the server still serves the app
            page.wait_for_selector(".js-plotly-plot", timeout=180_000)
        finally:
            browser.close()


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing")
def test_a_class_trains_at_once_on_one_server(start_app):
    """Load: browser sessions on one server, each training its own small model (the suite's small
    version: `make bench-class` opens thirty)."""
    from playwright.sync_api import sync_playwright

    from lab.store import RunStore
    sessions = CLASS_SESSIONS
    url, store_dir = start_app()
    t0 = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            pages = [browser.new_context().new_page() for _ in range(sessions)]
            for i, page in enumerate(pages):                       # every student opens the app ...
                page.goto(url + f"/?{TINY.replace('width=32', 'width=16')}&tokens=32k&seed={i}", timeout=300_000)
            for page in pages:
                page.wait_for_selector("button.lab-train", timeout=300_000)
                page.wait_for_selector(".js-plotly-plot", timeout=300_000)    # the app is drawn
            loaded = time.monotonic() - t0
            for page in pages:                                     # ... and presses Train at about the same time
                page.click("button.lab-train")
            store = RunStore(store_dir)
            _wait(lambda: len(store.table()) == sessions and set(store.table().status) == {"done"}, 600,
                  f"{sessions} runs to finish")
            for page in pages:                                      # every page saw its own run end
                _wait(lambda: page.is_enabled("button.lab-train"), 60, "Train to be enabled again", page)
            assert _code(url + "/") == 200                         # the server still answers
        finally:
            browser.close()
    table = RunStore(store_dir).table()
    assert len(table) == sessions and table.run_id.is_unique and set(table.seed) == set(range(sessions))
    assert (table.attempts == 1).all() and (table.status == "done").all()
    assert RunStore(store_dir).integrity() == "ok"
    print(f"load: {sessions} sessions, {len(table)} runs done, 0 failures; all pages ready after {loaded:.0f} s, "
          f"all runs done after {time.monotonic() - t0:.0f} s")


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing")
def test_two_pages_on_one_server_never_lose_each_others_runs(app):
    """Issue 13, in two browsers: B's Train shows A's finished run, B's Train again then Stop leaves it
    done; B's Train on a run A is training follows it, and B's Stop stops following, never A's run."""
    from playwright.sync_api import sync_playwright

    from lab.store import RunStore
    url, store_dir = app
    short = url + f"/?{TINY.replace('width=32', 'width=16')}&tokens=1M"   # long enough to Stop its retry
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            a, b = (browser.new_context().new_page() for _ in range(2))
            for page in (a, b):
                page.set_viewport_size({"width": 1400, "height": 1100})
                _open(page, short)
            _train_and_watch(a)                                      # page A: one finished run
            store = RunStore(store_dir)
            (done,) = store.records()
            assert done.status == "done"
            b.click("button.lab-train")                              # page B, same config: shown, not trained
            b.wait_for_selector(".lab-notice:has-text('is already in the store')", timeout=60_000)
            b.wait_for_selector("button.lab-train-again", state="visible", timeout=30_000)
            assert "from the store" in b.inner_text(".lab-status")
            assert [(r.run_id, r.attempts, r.finished) for r in store.records()] == [(done.run_id, 1, done.finished)]
            b.click("button.lab-train-again")                        # Train again, then Stop
            _wait(lambda: len(store.records()) == 2, 120, "the new attempt to start", b)
            b.click("button.lab-stop")
            _wait(lambda: {r.status for r in store.records()} == {"done", "cancelled"}, 120, "the retry to stop", b)
            after = store.record(done.run_id, curve=True)
            assert after.status == "done" and after.finished == done.finished and len(after.result.curve) >= 2

            long = url + f"/?{TINY}&tokens=50M&seed=3"                # A trains a long run; B asks for it too
            for page in (a, b):
                _open(page, long)
            a.click("button.lab-train")
            _wait(lambda: any(r.status == "running" for r in store.records()), 120, "A's long run to start", a)
            b.click("button.lab-train")
            b.wait_for_selector(".lab-notice:has-text('another page asked for this run first')", timeout=60_000)
            curve = lambda: b.evaluate(CURVE_POINTS)[0]               # noqa: E731
            n = curve()
            _wait(lambda: curve() > n, 120, "B's plot to show A's curve growing", b)
            b.click("button.lab-stop")                               # B stops following ...
            b.wait_for_selector(".lab-notice:has-text('stopped following')", timeout=60_000)
            time.sleep(2)
            running = [r for r in store.records() if r.config.seed == 3]
            assert [r.status for r in running] == ["running"] and running[0].attempts == 1   # ... A's run goes on
            a.click("button.lab-stop")
            _wait(lambda: store.record(running[0].run_id).status == "cancelled", 120, "A's run to stop", a)
        finally:
            browser.close()
    assert RunStore(store_dir).integrity() == "ok"


@pytest.fixture
def busy():
    """A CPU-bound process beside the server, as on a class server that does other work."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing")
def test_a_teacher_and_two_students_share_one_worker(start_app, busy):
    """Issue 19 with a few pages, one worker and a busy CPU: the teacher's long run holds the worker;
    a student's run waits and says its place; a second student (a wrong teacher token: student mode)
    asking for the same run follows it, trained once; names are shown as text on the teacher's
    projector view; a student's Delete of the teacher's run is refused, the teacher's works."""
    from urllib.parse import quote

    from playwright.sync_api import sync_playwright

    from lab.store import RunStore
    url, store_dir = start_app("--workers", "1", "--teacher-token", "sesame")
    store = RunStore(store_dir)
    small = f"{TINY.replace('width=32', 'width=16')}&tokens=48k&seed=2"
    name = "<b>Cyd</b>"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            teacher, a, b, projector = (browser.new_context().new_page() for _ in range(4))
            for page in (teacher, a, b, projector):
                page.set_viewport_size({"width": 1400, "height": 1100})
            _open(teacher, url + f"/?teacher=sesame&{TINY}&tokens=50M&seed=1")
            assert "teacher" in teacher.inner_text(".lab-role")
            teacher.click("button.lab-train")                        # the teacher's long run holds the worker
            _wait(lambda: any(r.status == "running" for r in store.records()), 180, "the teacher's run to start",
                  teacher)

            _open(a, url + f"/?name={quote(name)}&{small}")
            assert name in a.inner_text(".lab-role")                  # the name, as text
            a.click("button.lab-train")
            a.wait_for_selector(".lab-status:has-text('waiting in the queue: place 1 of 1')", timeout=60_000)

            _open(b, url + f"/?teacher=wrong&name=Bo&{small}")
            assert "student mode" in b.inner_text(".lab-notice") and "teacher" not in b.inner_text(".lab-role")
            b.click("button.lab-train")                              # the same run: B waits on A's
            b.wait_for_selector(".lab-status:has-text('waiting in the queue: place 1 of 1')", timeout=60_000)

            _open(projector, url + "/?teacher=sesame&view=class")      # the teacher's projector view
            for hook, words in ((".lab-class-pages", "Bo"), (".lab-class-waiting", "Bo"),
                                (".lab-class-training", "teacher")):
                projector.wait_for_selector(f"{hook}:has-text('{words}')", timeout=60_000)
            projector.wait_for_selector(f".lab-class-waiting:has-text('{name}')", timeout=30_000)
            assert projector.locator(".lab-class-waiting b:has-text('Cyd')").count() == 0   # escaped, not bold
            assert projector.locator(".lab-class-pages b:has-text('Cyd')").count() == 0

            teacher.click("button.lab-stop")                         # the worker is free: A's run trains
            grow = {pg: pg.evaluate(CURVE_POINTS)[0] for pg in (a, b)}
            _wait(lambda: all(pg.is_enabled("button.lab-train") for pg in (a, b)), 300, "A's and B's run to end", a)
            time.sleep(1)                                            # the last throttled redraw
            for pg in (a, b):                                        # both drew the curve of the one run
                assert pg.evaluate(CURVE_POINTS)[0] > grow[pg] + 1, pg.inner_text(".lab-status")
            shared = [r for r in store.records() if r.config.seed == 2]
            assert [(r.status, r.attempts) for r in shared] == [("done", 1)]
            (mine,) = [r for r in store.records() if r.config.seed == 1]
            assert mine.status == "cancelled"

            for page in (a, teacher):                                # Delete the teacher's run: A, then the teacher
                page.click(".lm-TabBar-tab:has-text('Runs')")
                page.wait_for_selector(f".lab-runs-select option:has-text('{mine.run_id[:8]}')", state="attached",
                                       timeout=60_000)
                label = page.inner_text(f".lab-runs-select option:has-text('{mine.run_id[:8]}')")
                page.select_option(".lab-runs-select select", label=label)
                page.click("button.lab-runs-delete")
                if page is a:
                    a.wait_for_selector(".lab-error:has-text('only they or the teacher can')", timeout=60_000)
                    assert mine.run_id in [r.run_id for r in store.records()]
            _wait(lambda: mine.run_id not in [r.run_id for r in store.records()], 60, "the teacher's Delete", teacher)
            assert [r.run_id for r in store.records()] == [shared[0].run_id]
        finally:
            browser.close()
    assert store.integrity() == "ok"


def test_a_preheated_kernel_that_died_is_never_handed_to_a_page():
    """Thirty kernels started at once can lose a port to another process and die in the pool; the
    class pool drops such a kernel (and refills) instead of giving a page a dead one."""
    import asyncio

    from widgets.serve import class_pool

    import logging

    class Pool:                          # the part of Voila's pooled kernel manager that class_pool uses
        fill_delay = 0
        log = logging.getLogger("test-pool")

        def __init__(self, **kwargs):
            self._pools, self.kernel_pools_config, self.fills, self.alive = {}, {"default": {"pool_size": 3}}, [], set()

        def list_kernel_ids(self):
            return list(self.alive)

        def get_pool_size(self, name):
            return len(self._pools.get(name, []))

        def fill_if_needed(self, delay=None, notebook_name=None, extra_kernel_env_variables={}, **kwargs):
            self.fills.append(delay)

        async def get_rendered_notebook(self, name, extra={}, **kwargs):
            return (await self._pools[name].pop(0))["kernel_id"]

    async def go():
        m = class_pool(Pool)()
        ready = []
        for kid in ("a", "b", "c"):
            f = asyncio.get_running_loop().create_future()
            f.set_result({"kernel_id": kid})
            ready.append(f)
        m._pools["lab.ipynb"] = ready
        m.alive = {"b", "c"}                                    # "a" died while it waited
        assert m.get_pool_size("lab.ipynb") == 2                # dropped ...
        assert m._refill is not None and not m._refill.done()   # ... and a refill on its way
        assert await m.get_rendered_notebook("lab.ipynb") == "b"
        m._refill.cancel()

    asyncio.run(go())
