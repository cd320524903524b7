"""A class of thirty: N browser pages on one app server, each page's time to ready and every kernel's memory.

    python -m bench.bench_class --pages 30 [--train K] [--json PATH]        (make bench-class)

One server started as `make lab` starts it (`python -m lab app`: Voila, one preheated kernel,
jemalloc in the kernels) on a free port with a fresh temporary run store. Once its preheated
kernel has built the app, N pages open in one headless Chromium, each in its own browser
context (a student of its own), all at once unless `--stagger S` spaces them. Every page opens
a link with the "first run" preset (a 32-wide, 2-layer GPT on 100k tokens of the small built-in
corpus, seconds of training) and its own seed, and counts as ready exactly as the browser tests
count it (tests/test_browser.py `_open`): the Train button, the figure and the notice that the
link's settings were applied. Then every Voila kernel (a process below the server whose command
line names ipykernel) is measured: RSS, PSS (shared pages divided among their users: the sum is
what the kernels cost together) and USS (private), with the server's own RSS, the browser's PSS
and the machine's available memory before, with the pages ready, after training and after the
end. `--train K` presses Train on K pages at once and waits for every run to be done in the
store and every page's Train button to be enabled again.

Prints a markdown table and writes JSON (bench/results/class-<time>.json or `--json PATH`).
Everything it started (server, kernels, browser) is ended at the end, also on an error or Ctrl-C.
Processes of others that use CPU during the run (a training job on a shared machine) are listed.
"""

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil                      # comes with ipykernel (the app's kernels need it)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))      # run from a checkout without installing
sys.path.insert(1, str(ROOT / "tests"))
from bench import save_report                                                # noqa: E402
from test_browser import ARGS, CHROMIUM, _free_port, stop_process_group      # noqa: E402  the browser tests' own

MiB = 2 ** 20
LINK = "preset=first-run&seed={seed}"       # what every page opens (the seed keeps the runs apart in the store)


def _mem(proc: psutil.Process) -> dict | None:
    try:
        m = proc.memory_full_info()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return {"pid": proc.pid, "rss": m.rss, "pss": getattr(m, "pss", m.rss), "uss": m.uss}


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _cmd(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return ""


def _kernels(server_pid: int) -> list[psutil.Process]:
    return [p for p in _descendants(server_pid) if "ipykernel" in _cmd(p)]


def _workers(server_pid: int) -> list[psutil.Process]:
    """The training service's worker processes (`scaling-lab worker`)."""
    return [p for p in _descendants(server_pid) if " lab worker " in f" {_cmd(p)} "]


def _stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {"n": len(values), "median": statistics.median(values), "min": min(values), "max": max(values),
            "total": sum(values)}


def cpu_seconds(server_pid: int) -> dict:
    """CPU seconds used so far by the server's processes (Voila, kernels, workers) and by the browser:
    where the time of a page load goes on a machine that runs both."""
    server_tree = [psutil.Process(server_pid)] + _descendants(server_pid)
    ids = {p.pid for p in server_tree}
    browser = [p for p in psutil.Process().children(recursive=True) if p.pid not in ids]

    def total(procs, pick=lambda p: True):
        out = 0.0
        for p in procs:
            try:
                if pick(p):
                    t = p.cpu_times()
                    out += t.user + t.system + getattr(t, "children_user", 0) * 0
            except psutil.Error:
                pass
        return out
    return {"kernels": total(server_tree, lambda p: "ipykernel" in _cmd(p)),
            "workers": total(server_tree, lambda p: " lab worker " in f" {_cmd(p)} "),
            "voila": total(server_tree, lambda p: "ipykernel" not in _cmd(p) and " lab worker " not in f" {_cmd(p)} "),
            "browser": total(browser)}


def memory_sample(server_pid: int, seen: dict) -> dict:
    """Every kernel's memory, the server's, the browser's and the machine's available memory.
    `seen` collects (pid -> create time) of every kernel met, to end stray ones at the end."""
    kernels = [m for m in (_mem(p) for p in _kernels(server_pid)) if m]
    for p in _kernels(server_pid):
        try:
            seen[p.pid] = p.create_time()
        except psutil.NoSuchProcess:
            pass
    workers = [m for m in (_mem(p) for p in _workers(server_pid)) if m]
    server = [m for m in (_mem(p) for p in [psutil.Process(server_pid)] + _descendants(server_pid)
                          if "ipykernel" not in _cmd(p) and " lab worker " not in f" {_cmd(p)} ") if m]
    browser = [m for m in (_mem(p) for p in psutil.Process().children(recursive=True)
                           if p.pid != server_pid and p.pid not in {d.pid for d in _descendants(server_pid)}) if m]
    return {"kernels": len(kernels),
            "kernel_rss_mib": _stats([k["rss"] / MiB for k in kernels]),
            "kernel_pss_mib": _stats([k["pss"] / MiB for k in kernels]),
            "kernel_uss_mib": _stats([k["uss"] / MiB for k in kernels]),
            "server_rss_mib": sum(m["rss"] for m in server) / MiB,    # `python -m lab app` and Voila
            "server_pss_mib": sum(m["pss"] for m in server) / MiB,
            "workers": len(workers), "worker_pss_mib": _stats([w["pss"] / MiB for w in workers]),
            "total_pss_mib": (sum(k["pss"] for k in kernels) + sum(w["pss"] for w in workers)
                              + sum(m["pss"] for m in server)) / MiB,   # kernels, workers and the server together
            "browser_pss_mib": sum(m["pss"] for m in browser) / MiB,  # Chromium and Playwright's driver (the clients)
            "available_mib": psutil.virtual_memory().available / MiB,
            "per_kernel": kernels}


def _ours(p: psutil.Process) -> bool:
    try:
        return p.pid == os.getpid() or any(q.pid == os.getpid() for q in p.parents())
    except psutil.Error:
        return False


def cpu_watch() -> list[psutil.Process]:
    """Start measuring every process's CPU use (read it with `neighbours`)."""
    procs = list(psutil.process_iter())
    for p in procs:
        try:
            p.cpu_percent(None)
        except psutil.Error:
            pass
    return procs


def neighbours(procs: list[psutil.Process]) -> dict:
    """Processes not started by this benchmark that used more than a quarter of a core on average
    since `cpu_watch`, and the load average."""
    busy = []
    for p in procs:
        try:
            cpu = p.cpu_percent(None)
            if cpu > 25 and not _ours(p):
                busy.append({"pid": p.pid, "cpu_percent": round(cpu), "rss_mib": round(p.memory_info().rss / MiB),
                             "cmd": " ".join(_cmd(p).split())[:160]})
        except psutil.Error:
            pass
    return {"loadavg": os.getloadavg(), "busy": busy}


class MemoryGuard:
    """Watches the machine's available memory while the class runs: records its lowest value and,
    should it fall under `floor_mib`, kills the server's kernels at once (a benchmark must not push a
    shared machine into the OOM killer, whose choice of victim could be someone else's job)."""

    def __init__(self, server_pid: int, floor_mib: float, seen: dict):
        import threading
        self.server_pid, self.floor_mib, self.seen = server_pid, floor_mib, seen
        self.lowest_mib = psutil.virtual_memory().available / MiB
        self.tripped: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(0.5):
            avail = psutil.virtual_memory().available / MiB
            self.lowest_mib = min(self.lowest_mib, avail)
            if avail < self.floor_mib and not self.tripped:
                self.tripped = (f"available memory fell to {avail:.0f} MiB (< {self.floor_mib:.0f}): "
                                f"{len(_kernels(self.server_pid))} kernels killed to protect the machine")
                for k in _kernels(self.server_pid):
                    try:
                        self.seen[k.pid] = k.create_time()
                        k.kill()
                    except psutil.NoSuchProcess:
                        pass

    def stop(self):
        self._stop.set()
        self._thread.join()


def start_server(tmp: Path, jemalloc: bool, iopub_timeout: float | None = None, class_size: int | None = None,
                 workers: str | None = None) -> tuple[subprocess.Popen, str, Path]:
    """`python -m lab app` as `make lab` runs it (and tests/test_serving.py), on a free port, fresh store."""
    port = _free_port()
    store = tmp / "store"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    for k in ("SCALING_LAB_QUICK", "QUERY_STRING", "SCALING_LAB_STORE"):
        env.pop(k, None)
    if not jemalloc:
        env["SCALING_LAB_JEMALLOC"] = "0"
    if iopub_timeout is not None:            # a Voila config file of its own, beside the user's and voila.json
        conf = tmp / "jupyter-config"
        conf.mkdir()
        (conf / "voila.json").write_text(json.dumps({"VoilaExecutor": {"iopub_timeout": iopub_timeout}}))
        env["JUPYTER_CONFIG_PATH"] = os.pathsep.join([str(conf), env.get("JUPYTER_CONFIG_PATH", "")]).rstrip(os.pathsep)
    log = open(tmp / "app.log", "wb")
    extra = (["--class", str(class_size)] if class_size else []) + (["--workers", workers] if workers else [])
    proc = subprocess.Popen([sys.executable, "-m", "lab", "app", "--port", str(port), "--store", str(store), *extra],
                            cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    return proc, f"http://127.0.0.1:{port}/", store


def wait_for_server(proc: subprocess.Popen, url: str, log: Path, timeout: float, kernels: int = 1) -> float:
    """Until Voila answers (a static path, so no kernel is taken) and its `kernels` preheated kernels
    have built the app and gone idle (the warm-up). Returns the seconds it took."""
    t0 = time.monotonic()
    deadline = t0 + timeout

    def check():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the app server did not start or its kernel did not settle: {log.read_text()[-2000:]}")

    while True:
        try:
            urllib.request.urlopen(url + "voila/static/", timeout=2)
            break
        except urllib.error.HTTPError:       # an error page: the server answers
            break
        except OSError:
            check()
            time.sleep(0.3)
    last, quiet = None, 0
    while quiet < 3:                         # the preheated kernel: busy importing and building, then idle
        check()
        ks = _kernels(proc.pid)
        died = log.read_text(errors="replace").count("died, removing from map")   # a preheated kernel lost
        try:
            cpu = sum(sum(k.cpu_times()[:2]) for k in ks) if len(ks) >= kernels - died else None
        except psutil.NoSuchProcess:
            cpu = None
        quiet = quiet + 1 if cpu is not None and last is not None and cpu > 2 and cpu - last < 0.05 else 0
        last = cpu
        time.sleep(1)
    return time.monotonic() - t0


async def open_page(browser, i: int, url: str, args, t_start: float, rec: dict):
    await asyncio.sleep(i * args.stagger)
    context = await browser.new_context(viewport={"width": 1400, "height": 1100})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)[:300]))
    console: list[str] = []                  # the front end's warnings and errors: what went wrong, if anything
    page.on("console", lambda m: m.type in ("error", "warning") and len(console) < 12
            and console.append(f"{m.type}: {m.text[:200]}"))
    link = url + "?" + LINK.format(seed=0 if args.same else i) + (f"&tokens={args.tokens}" if args.tokens else "")
    t0 = time.monotonic()
    rec.update({"page": i, "seed": 0 if args.same else i, "opened_s": round(t0 - t_start, 2), "page_errors": errors, "console": console})
    deadline = t0 + args.timeout
    ms = lambda: max(1, (deadline - time.monotonic()) * 1000)          # noqa: E731
    try:
        await page.goto(link, timeout=ms())
        rec["loaded_s"] = round(time.monotonic() - t0, 2)              # Voila streams the page as the notebook runs
        # ready as tests/test_browser.py `_open` has it: the app drawn, the link's settings applied
        await page.wait_for_selector("button.lab-train", timeout=ms())
        await page.wait_for_selector(".js-plotly-plot", timeout=ms())
        await page.wait_for_selector(".lab-notice:has-text('settings from the link')", timeout=ms())
        rec["ready_s"] = round(time.monotonic() - t0, 2)
    except Exception as e:                                             # noqa: BLE001  reported, not raised
        rec["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
        try:                                 # what the page does show: output areas, widget views, text
            rec["shown"] = await page.evaluate("""() => ({outputs: document.querySelectorAll('.jp-OutputArea-output').length,
                widgets: document.querySelectorAll('.jupyter-widgets').length,
                text: document.body.innerText.slice(0, 200)})""")
            if args.keep:
                await page.screenshot(path=str(args.tmp / f"page-{i}.png"))
        except Exception:                                              # noqa: BLE001
            pass
    return page


CURVE = """() => { const el = document.querySelector('.js-plotly-plot'); if (!el || !el.data) return 0;
    return el.data.filter(t => (t.xaxis || 'x') === 'x' && t.visible !== false)
                  .reduce((n, t) => n + (t.x ? t.x.length : 0), 0) }"""


async def _watch_page(page, rec: dict, t0: float, stop: asyncio.Event) -> None:
    """While the class trains: when this page first drew a live curve (2+ points while Train is
    still disabled), its queue places as it read them, and when its Train was enabled again."""
    w = rec["watch"] = {"places": [], "live_s": None, "enabled_s": None, "curve_points": 0}
    while not stop.is_set():
        try:
            status = await page.inner_text(".lab-status", timeout=5000)
            points = await page.evaluate(CURVE)
            enabled = await page.evaluate("() => { const b = document.querySelector('button.lab-train');"
                                          " return !!b && !b.disabled }")
        except Exception:                                              # noqa: BLE001  a busy page: look again
            await asyncio.sleep(1)
            continue
        now = round(time.monotonic() - t0, 1)
        if "place" in status:
            place = status.split("place ", 1)[1].split(",")[0].split(" ·")[0]
            if not w["places"] or w["places"][-1][1] != place:
                w["places"].append((now, place))
        if points >= 2 and not enabled and w["live_s"] is None:
            w["live_s"] = now
        w["curve_points"] = max(w["curve_points"], points)
        if enabled and now > 2 and w["enabled_s"] is None:
            w["enabled_s"] = now
            return
        await asyncio.sleep(1.0)


async def train(pages: list, recs: list[dict], store_dir: Path, k: int, timeout: float) -> dict:
    """Press Train on the first k ready pages at once; wait for every run done and every page's Train
    enabled again, watching each page's live curve and its place in the queue meanwhile."""
    from lab.store import RunStore
    chosen = [(p, r) for p, r in zip(pages, recs) if "ready_s" in r][:k]
    if not chosen:
        return {"pages": 0, "requested": k, "done": 0, "runs": 0, "statuses": {}, "attempts_max": 0,
                "pages_enabled_again": 0, "all_done_s": None, "done_s": _stats([]), "tokens_per_s": _stats([]),
                "live_s": _stats([]), "pages_live": 0, "pages_placed": 0, "integrity": "not trained"}
    t0 = time.monotonic()
    await asyncio.gather(*(page.click("button.lab-train") for page, _ in chosen))
    stop = asyncio.Event()
    watchers = [asyncio.create_task(_watch_page(page, r, t0, stop)) for page, r in chosen]
    seeds = {r["seed"] for _, r in chosen}
    done_at: dict[int, float] = {}
    status: dict[int, str] = {}
    store = RunStore(store_dir)
    while time.monotonic() - t0 < timeout:
        await asyncio.sleep(1)
        for rec in store.records():
            s = rec.config.seed
            status[s] = rec.status
            if s in seeds and rec.status in ("done", "diverged", "failed", "cancelled", "interrupted"):
                done_at.setdefault(s, time.monotonic() - t0)
        if seeds <= set(done_at) and all(w.done() for w in watchers):
            break
    try:
        await asyncio.wait_for(asyncio.gather(*watchers), 60)
    except asyncio.TimeoutError:
        stop.set()
    for _, r in chosen:
        r["trained"] = {"status": status.get(r["seed"]), "done_s": round(done_at.get(r["seed"], float("nan")), 1)}
    records = store.records()
    watched = [r["watch"] for _, r in chosen if "watch" in r]
    return {"pages": len(chosen), "requested": k, "runs": len(seeds),
            "done": sum(status.get(s) == "done" for s in seeds),
            "statuses": {s: status.get(s) for s in sorted(seeds)},
            "runs_in_store": len(records),
            "attempts_max": max((r.attempts for r in records), default=0),
            "pages_enabled_again": sum(1 for w in watched if w["enabled_s"] is not None),
            "all_done_s": max(done_at.values()) if seeds <= set(done_at) else None,
            "done_s": _stats(list(done_at.values())),
            "enabled_s": _stats([w["enabled_s"] for w in watched if w["enabled_s"] is not None]),
            "live_s": _stats([w["live_s"] for w in watched if w["live_s"] is not None]),
            "pages_live": sum(1 for w in watched if w["live_s"] is not None),
            "pages_placed": sum(1 for w in watched if w["places"]),
            "first_places": sorted(int(w["places"][0][1].split()[0]) for w in watched if w["places"]
                                   and w["places"][0][1].split()[0].isdigit()),
            "tokens_per_s": _stats([r.result.tokens_per_s for r in records
                                    if r.result is not None and getattr(r.result, "tokens_per_s", None)]),
            "integrity": store.integrity()}


async def progress(recs: list[dict], server_pid: int, t_start: float, report: dict, every: float = 30) -> None:
    """A line every `every` seconds while the pages load: how many loaded and ready, kernels, memory."""
    report["progress"] = []
    while True:
        await asyncio.sleep(every)
        line = {"t_s": round(time.monotonic() - t_start), "loaded": sum("loaded_s" in r for r in recs),
                "ready": sum("ready_s" in r for r in recs), "failed": sum("error" in r for r in recs),
                "kernels": len(_kernels(server_pid)),
                "available_mib": round(psutil.virtual_memory().available / MiB)}
        report["progress"].append(line)
        print("  " + ", ".join(f"{k} {v}" for k, v in line.items()), flush=True)


async def drive(args, url: str, store: Path, server_pid: int, report: dict, seen: dict) -> None:
    from playwright.async_api import async_playwright
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            t_start = time.monotonic()
            cpu0 = cpu_seconds(server_pid)
            recs = report["pages"] = [{} for _ in range(args.pages)]
            watch = asyncio.create_task(progress(recs, server_pid, t_start, report))
            try:
                pages = await asyncio.gather(*(open_page(browser, i, url, args, t_start, recs[i])
                                               for i in range(args.pages)))
            finally:
                watch.cancel()
            ready = [r["ready_s"] for r in recs if "ready_s" in r]
            cpu1 = cpu_seconds(server_pid)
            report["load_cpu_s"] = {k: round(cpu1[k] - cpu0[k], 1) for k in cpu0}
            report["ready"] = {"pages": len(ready), "of": args.pages, "ready_s": _stats(ready),
                               "loaded_s": _stats([r["loaded_s"] for r in recs if "loaded_s" in r]),
                               "all_ready_after_s": round(time.monotonic() - t_start, 1),
                               "page_errors": sum(len(r["page_errors"]) for r in recs)}
            print(f"{len(ready)}/{args.pages} pages ready after {time.monotonic() - t_start:.0f} s", flush=True)
            await asyncio.sleep(args.settle)
            report["memory"]["ready"] = memory_sample(server_pid, seen)
            if args.train:
                report["train"] = await train(pages, recs, store, args.train, args.timeout)
                print(f"{report['train']['done']}/{args.train} runs done", flush=True)
                await asyncio.sleep(args.settle)
                report["memory"]["trained"] = memory_sample(server_pid, seen)
                report["ready"]["page_errors"] = sum(len(r["page_errors"]) for r in recs)
        finally:
            await browser.close()


def end_all(server: subprocess.Popen | None, seen: dict) -> list[int]:
    """Stop the server's process group, then any kernel it left (kernels run in sessions of their own)."""
    if server is not None and server.poll() is None:
        for p in _kernels(server.pid):
            try:
                seen[p.pid] = p.create_time()
            except psutil.NoSuchProcess:
                pass
        stop_process_group(server)
    killed = []
    deadline = time.monotonic() + 10
    for pid, created in seen.items():
        try:
            p = psutil.Process(pid)
            if p.create_time() != created:
                continue
            p.wait(max(0.1, deadline - time.monotonic()))
        except psutil.NoSuchProcess:
            continue
        except psutil.TimeoutExpired:
            p.kill()
            killed.append(pid)
    for p in psutil.Process().children(recursive=True):     # the browser, if anything survived it
        try:
            p.kill()
            killed.append(p.pid)
        except psutil.NoSuchProcess:
            pass
    return killed


def _mib(x: float) -> str:
    return f"{x / 1024:.2f} GiB" if x >= 1024 else f"{x:.0f} MiB"


def table(report: dict) -> str:
    rows = []
    add = lambda k, v: rows.append(f"| {k} | {v} |")                      # noqa: E731
    if report.get("server_ready_s") is not None:
        idle = report["memory"].get("server_idle", {})
        add("server warm-up", f"{report['server_ready_s']:.0f} s until {report.get('class') or 1} preheated kernel(s) "
            f"had built the app (then {_mib(idle.get('total_pss_mib', 0))} PSS in all)")
    r = report.get("ready", {})
    if r:
        s = r["ready_s"]
        add("pages ready", f"{r['pages']} / {r['of']} (JS errors: {r['page_errors']})")
        if s["n"]:
            add("time to ready: median / min / max", f"{s['median']:.1f} / {s['min']:.1f} / {s['max']:.1f} s")
        add("all pages ready after", f"{r['all_ready_after_s']:.0f} s")
        shown = {}
        for page in report.get("pages", []):
            if "error" in page:              # what a page that never got ready shows
                sh = page.get("shown") or {}
                what = "blank" if not sh.get("outputs") and not sh.get("text") else \
                    f"{sh.get('outputs', '?')} outputs, text {(sh.get('text') or '')[:40]!r}"
                shown[what] = shown.get(what, 0) + 1
        if shown:
            add("pages not ready show", "; ".join(f"{v} × {k}" for k, v in shown.items()))
    if report.get("load_cpu_s"):
        c = report["load_cpu_s"]
        n = max(1, report["pages_asked"])
        add("CPU while the pages loaded: server (Voila, kernels, workers) / browser",
            f"{c['voila'] + c['kernels'] + c['workers']:.0f} s (Voila {c['voila']:.0f}, kernels {c['kernels']:.0f}) / "
            f"{c['browser']:.0f} s; per page {(c['voila'] + c['kernels']) / n:.2f} s server, {c['browser'] / n:.2f} s "
            "browser")
    for phase, label in (("ready", "pages ready"), ("trained", "after training")):
        m = report["memory"].get(phase)
        if not m:
            continue
        add(f"kernels ({label})", f"{m['kernels']} for {report['pages_asked']} pages (Voila keeps one more preheated)")
        for kind in ("rss", "pss", "uss"):
            st = m[f"kernel_{kind}_mib"]
            if st["n"]:
                add(f"kernel {kind.upper()}: median / max / total ({label})",
                    f"{_mib(st['median'])} / {_mib(st['max'])} / {_mib(st['total'])}")
        add(f"server RSS, browser PSS ({label})", f"{_mib(m['server_rss_mib'])}, {_mib(m['browser_pss_mib'])}")
        if m.get("workers") is not None:
            w = m["worker_pss_mib"]
            add(f"workers: PSS each ({label})", f"{m['workers']} × " + (f"{_mib(w['median'])}" if w["n"] else "-"))
            add(f"the whole server: kernels + workers + Voila, PSS ({label})", _mib(m["total_pss_mib"]))
    mem = report["memory"]
    add("available memory: before / pages ready / after training / after the end",
        " / ".join(_mib(mem[k]["available_mib"]) if k in mem else "-" for k in ("before", "ready", "trained", "after")))
    if "lowest_available_mib" in mem:
        add("lowest available memory during the run", _mib(mem["lowest_available_mib"]))
    t = report.get("train")
    if t:
        add("Train pressed at once on", f"{t['pages']} of the pages")
        add("runs done", f"{t['done']} / {t['runs']} asked, {t.get('runs_in_store', '?')} in the store (statuses "
                         f"{sorted(set(t['statuses'].values()), key=str)}; pages' Train enabled again: "
                         f"{t['pages_enabled_again']} / {t['pages']}; store {t['integrity']})")
        if t.get("live_s", {}).get("n"):
            add("pages that drew the curve live; first live point: median / max",
                f"{t['pages_live']} / {t['pages']}; {t['live_s']['median']:.0f} / {t['live_s']['max']:.0f} s")
        if t.get("pages_placed"):
            add("pages that showed their place in the queue", f"{t['pages_placed']} / {t['pages']} (first places "
                f"{t['first_places'][:3]}…{t['first_places'][-3:]})")
        if t.get("enabled_s", {}).get("n"):
            add("page done (Train enabled again): median / max",
                f"{t['enabled_s']['median']:.0f} / {t['enabled_s']['max']:.0f} s")
        if t["done_s"]["n"]:
            add("run done after: median / max", f"{t['done_s']['median']:.0f} / {t['done_s']['max']:.0f} s")
        if t["tokens_per_s"]["n"]:
            add("tokens/s per run: median", f"{t['tokens_per_s']['median']:,.0f}")
    n = report["neighbours"]
    busy = n["before"]["busy"] + n["during"]["busy"]
    add("other processes using CPU", "; ".join(sorted({f"{b['cmd'][:70]} ({b['cpu_percent']} %)" for b in busy}))
        or "none")
    add("load average before / at the end", f"{n['before']['loadavg'][0]:.1f} / {n['during']['loadavg'][0]:.1f}")
    if report.get("server_log_counts"):
        add("Voila log", ", ".join(f"{k}: {v}" for k, v in report["server_log_counts"].items()))
    if report.get("failures"):
        add("failures", "; ".join(report["failures"])[:500])
    return "| measure | value |\n| --- | --- |\n" + "\n".join(rows)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m bench.bench_class", description=__doc__.splitlines()[0])
    p.add_argument("--pages", type=int, default=30, help="browser pages, each its own context (default 30)")
    p.add_argument("--train", type=int, default=0, metavar="K", help="press Train on K of the pages at once")
    p.add_argument("--tokens", default="", help="tokens per run instead of the first-run preset's 100k (e.g. 32k)")
    p.add_argument("--stagger", type=float, default=0.0, metavar="S", help="seconds between page arrivals (default 0)")
    p.add_argument("--timeout", type=float, default=900, help="seconds a page may take to be ready, and the "
                   "training to finish (default 900)")
    p.add_argument("--settle", type=float, default=5, help="seconds between the last event and a memory sample")
    p.add_argument("--min-available-mib", type=float, default=2048, help="kill the kernels (and report it) "
                   "should the machine's available memory fall under this (default 2048)")
    p.add_argument("--iopub-timeout", type=int, default=None, metavar="S", help="Voila's wait for a cell's "
                   "last output after its reply (nbclient's iopub_timeout, 4 s unless set; the app as served sets none)")
    p.add_argument("--no-jemalloc", action="store_true", help="kernels without jemalloc (SCALING_LAB_JEMALLOC=0)")
    p.add_argument("--class", dest="class_size", type=int, default=None, metavar="N",
                   help="serve with `scaling-lab app --class N`: N pages preheated (a warmed server)")
    p.add_argument("--same", action="store_true", help="every page asks for the same run (seed 0): one run, N followers")
    p.add_argument("--workers", default=None, help="the service's workers (as `scaling-lab app --workers`)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (store, server log)")
    p.add_argument("--json", default=None, help="output file (default bench/results/class-<time>.json)")
    args = p.parse_args(argv)
    if not os.path.exists(CHROMIUM):
        p.error(f"{CHROMIUM} is missing: install Debian's chromium (make system-packages)")

    def on_term(signum, frame):              # as Ctrl-C (asyncio.run then cancels the page tasks in order)
        os.kill(os.getpid(), signal.SIGINT)
    old = signal.signal(signal.SIGTERM, on_term)
    tmp = args.tmp = Path(tempfile.mkdtemp(prefix="bench-class-"))
    report = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": platform.machine(),
              "cpu_count": os.cpu_count(), "memory_total_mib": psutil.virtual_memory().total / MiB,
              "pages_asked": args.pages, "train_asked": args.train, "link": LINK, "tokens": args.tokens or "100k",
              "stagger_s": args.stagger, "jemalloc": not args.no_jemalloc,
              "iopub_timeout_s": args.iopub_timeout, "class": args.class_size, "same": args.same,
              "workers": args.workers, "memory": {}, "neighbours": {},
              "failures": []}
    server, seen = None, {}
    try:
        procs = cpu_watch()
        time.sleep(3)
        report["neighbours"]["before"] = neighbours(procs)
        report["memory"]["before"] = {"available_mib": psutil.virtual_memory().available / MiB}
        server, url, store = start_server(tmp, jemalloc=not args.no_jemalloc, iopub_timeout=args.iopub_timeout,
                                          class_size=args.class_size, workers=args.workers)
        report["server_ready_s"] = wait_for_server(server, url, tmp / "app.log", 900, kernels=args.class_size or 1)
        report["memory"]["server_idle"] = memory_sample(server.pid, seen)
        print(f"server up with {args.class_size or 1} preheated kernel(s) after {report['server_ready_s']:.0f} s ({url}, log {tmp}/app.log); "
              f"opening {args.pages} pages",
              flush=True)
        procs = cpu_watch()                  # others' CPU use while the pages load (and train): averaged over the run
        guard = MemoryGuard(server.pid, args.min_available_mib, seen)
        try:
            asyncio.run(drive(args, url, store, server.pid, report, seen))
        finally:
            guard.stop()
            report["memory"]["lowest_available_mib"] = guard.lowest_mib
            if guard.tripped:
                report["failures"].insert(0, guard.tripped)
        report["neighbours"]["during"] = neighbours(procs)
        if server.poll() is not None:
            report["failures"].append(f"the server exited with {server.returncode}")
        for r in report.get("pages", []):
            if "error" in r:
                report["failures"].append(f"page {r['page']}: {r['error']}")
        t = report.get("train")
        if t and t["done"] != t["runs"]:
            report["failures"].append(f"{t['runs'] - t['done']} runs not done: {t['statuses']}")
    except KeyboardInterrupt:
        report["failures"].append("interrupted")
        print("interrupted: ending the server, its kernels and the browser", file=sys.stderr)
    except Exception as e:                   # noqa: BLE001  reported with what was measured (exit status 1)
        import traceback
        report["failures"].append(f"the benchmark failed: {type(e).__name__}: {e}")
        report["traceback"] = traceback.format_exc()
        traceback.print_exc()
    finally:
        log = tmp / "app.log"
        killed = end_all(server, seen)
        if killed:
            report["failures"].append(f"killed stray processes {killed}")
        if log.exists():
            text = log.read_text(errors="replace")
            report["server_log_errors"] = [ln[:300] for ln in text.splitlines()
                                           if "Traceback" in ln or ln.startswith("[E ") or "Error" in ln][:20]
            report["server_log_counts"] = {"kernels started": text.count("Kernel started:"),
                                           "IOPub timeouts": text.count("Timeout waiting for IOPub output")}
        time.sleep(1)
        report["memory"]["after"] = {"available_mib": psutil.virtual_memory().available / MiB}
        report["neighbours"].setdefault("during", {"loadavg": os.getloadavg(), "busy": []})
        if args.keep or report["failures"]:
            report["kept"] = str(tmp)
            print(f"kept {tmp} (the run store and app.log)", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        signal.signal(signal.SIGTERM, old)
    print()
    print(table(report))
    print(f"\nwritten {save_report(report, 'class', args.json)}")
    return report


if __name__ == "__main__":
    sys.exit(1 if main()["failures"] else 0)
