"""`scaling-lab app | service | worker | pack | unpack | lessons`: the app for a class and what serves it.

`app` serves the app notebook with Voila and starts the training service beside it (pages only
ask; the service's workers train); `service` and `worker` run those parts alone; `pack` and
`unpack` carry a store's finished runs to a class server; `lessons` copies the lesson notebooks.
"""

import argparse
import sys
from pathlib import Path

from lab.cli.options import integer
from lab.config import ConfigError

IOPUB_TIMEOUT_S = 120   # how long Voila waits for a cell's last output after its reply (nbclient default 4)

PAGE_MIB = 110      # a page kernel once the app is drawn, PSS (bench/README.md, "A class on one small server")
WORKER_MIB = 600    # a worker process after training the first-run preset (JAX, its compiled programs)
SERVER_MIB = 300    # Voila itself with a class's pages

ROOT = Path(__file__).resolve().parents[2]   # a checkout's root, or the folder the package is installed in

# The queue's limits for students (`lab.runqueue.RunQueue.set_limits`), each a flag of `app`.
LIMITS = {"max_pages": "most pages open at once; the next visitor reads that the class is full",
          "max_queued": "runs a student's page may have waiting in the queue (default 3; the teacher: no limit)",
          "max_tokens": "most training tokens of one run a student may ask for (default: no limit)"}


def _service_options(p, *, workers: bool = True, described: bool = False) -> None:
    """The store, the workers and their batch: `app` states them, `service` and `worker` take them as `app` does."""
    p.add_argument("--store", default=None, metavar="PATH", help="run store folder")
    if workers:
        p.add_argument("--workers", default=None, metavar="N|ray|ADDRESS", help=(
            "training workers: a number of processes (default: one per two cores), ray (a local Ray) or a Ray "
            "cluster's address; the server stays the store's single writer") if described else "as for `app`")
    p.add_argument("--max-batch", type=integer, default=None, metavar="K", help=(
        "queued runs of one config (different seeds) trained together through vmap (default: 2 on CPU, 16 on an "
        "accelerator)") if described else "as for `app`")


def register(sub) -> None:
    p = sub.add_parser("app", help="serve the interactive lab with Voila, and the training service",
                       description="Serve the app in a browser. Pages only show and ask; the training service's "
                                   "workers train what they ask, in a fair queue. Prints a student link and a teacher "
                                   "link (with a secret token).")
    p.add_argument("--port", type=integer, default=8866, help="port (default %(default)s)")
    p.add_argument("--ip", default="127.0.0.1", help="address to listen on (default %(default)s: this machine only)")
    p.add_argument("--cull-idle", type=integer, default=300, metavar="SECONDS",
                   help="shut down kernels idle this long whose page is gone (default %(default)s)")
    _service_options(p, described=True)
    p.add_argument("--class", dest="class_size", type=integer, default=None, metavar="N",
                   help="preheat N pages for a class (their memory is stated before the server starts)")
    for key, words in LIMITS.items():
        p.add_argument("--" + key.replace("_", "-"), type=integer, default=None, metavar="N", help=words)
    p.add_argument("--teacher-token", default=None, metavar="TOKEN",
                   help="the teacher link's secret (default: a new random one each start)")
    p.add_argument("--lang", default=None, metavar="LANG",
                   help="the pages' language: en (English, the default) or zh (简体中文); a page's link or its "
                        "language menu can still switch it")
    p.set_defaults(func=_app)
    p = _command(sub, "service", _service, "run the training service alone (workers that train queued runs)",
                 "Train what pages of the app queue in the store, until Ctrl-C.")
    _service_options(p)
    p.add_argument("--parent", type=integer, default=None, metavar="PID", help="stop when this process ends")
    p = _command(sub, "worker", _worker, "one training worker (the service starts these)",
                 "Train queued runs from the store until SIGTERM; its run goes back to the queue.")
    _service_options(p, workers=False)
    p.add_argument("--name", default="worker", help="how its log lines are named")
    _command(sub, "pack", _pack, "write a store's finished runs into one file, for a class server",
             "Pack the store's finished runs (curves and weights) into FILE.",
             ("store", "STORE", "the run store folder"), ("file", "FILE", "the pack to write (a .tar.gz)"))
    _command(sub, "unpack", _unpack, "add a pack's runs to a store (checked first)",
             "Check FILE (a pack) and add its runs to STORE; nothing is written unless it is sound.",
             ("file", "FILE", "a pack made by `scaling-lab pack`"),
             ("store", "STORE", "the run store folder (created if missing)"))
    p = _command(sub, "lessons", _lessons, "copy the lesson notebooks into a folder",
                 "Copy the lesson notebooks (shipped with the package) into FOLDER, in English or Chinese, with a "
                 "printable worksheet for each (FOLDER/worksheets/, HTML: the questions without the teacher notes).",
                 ("folder", "FOLDER", "where to copy them (created if missing)"))
    p.add_argument("--force", action="store_true", help="overwrite lessons already in FOLDER")
    p.add_argument("--lang", default="en", metavar="LANG",
                   help="en (English, the default) or zh (简体中文: the lessons' text translated, and the lab's "
                        "widgets, plots and errors in Chinese); the code is the same in both")
    p.add_argument("--quick", action="store_true",
                   help="write the lessons in quick mode (toy sizes, about a minute each on a 2-core laptop: their "
                        "first cell sets SCALING_LAB_QUICK=1), for a period without a prepared store")


def _command(sub, name: str, func, summary: str, description: str, *positionals):
    """A subcommand's parser: its one-line help, its description, its positional arguments as
    (name, metavar, help), and the function it runs."""
    p = sub.add_parser(name, help=summary, description=description)
    for dest, metavar, words in positionals:
        p.add_argument(dest, metavar=metavar, help=words)
    p.set_defaults(func=func)
    return p


def notebooks_folder():
    """The folder of the app and lesson notebooks: `notebooks/` in a checkout, else the copy
    installed with the package (`lab._notebooks`, see pyproject.toml)."""
    checkout = ROOT / "notebooks"
    if (checkout / "lab.ipynb").is_file():
        return checkout
    import importlib.util
    try:   # a folder without __init__.py: a namespace package, found by its search locations
        spec = importlib.util.find_spec("lab._notebooks")
    except ModuleNotFoundError:
        spec = None
    places = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    installed = next((p for p in places if (p / "lab.ipynb").is_file()), None)
    if installed is None:
        raise ConfigError(f"the app notebook is missing: neither {checkout} nor an installed lab._notebooks holds "
                          "lab.ipynb; reinstall scaling-lab (pip install scaling-lab) or run from a checkout")
    return installed


def _lessons(args) -> int:
    """Copy the lesson notebooks into a folder of the user's, to open in JupyterLab (`--lang zh`:
    translated from the one English source, `lab.i18n.translate_notebook`)."""
    import json
    src = notebooks_folder()
    lang = _lang(args.lang)
    dest = Path(args.folder)
    if dest.exists() and not dest.is_dir():
        raise ConfigError(f"{dest} is a file; give a folder to copy the lessons into")
    dest.mkdir(parents=True, exist_ok=True)
    lessons = sorted(src.glob("lesson*.ipynb"))
    clash = [p.name for p in lessons if (dest / p.name).exists() or (dest / "worksheets" / f"{p.stem}.html").exists()]
    if clash and not args.force:
        raise ConfigError(f"{dest} already holds {', '.join(clash)}; they would be overwritten: choose another folder "
                          "or pass --force")
    from lab import i18n
    from lab.worksheets import worksheet
    sheets = dest / "worksheets"
    sheets.mkdir(exist_ok=True)
    was = i18n.current()
    try:
        i18n.use(lang)                          # the worksheets' own words (Name, Date) in the lessons' language
        for p in lessons:
            nb = json.loads(p.read_text(encoding="utf-8"))
            if lang == "en" and not args.quick:
                (dest / p.name).write_bytes(p.read_bytes())
            else:
                out = i18n.translate_notebook(nb, lang)
                if args.quick:
                    _quick_first(out)
                (dest / p.name).write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
            (sheets / f"{p.stem}.html").write_text(worksheet(nb, lang), encoding="utf-8")
    finally:
        i18n.use(was)
    print(f"copied {len(lessons)} lessons ({i18n.LANGS[lang]}) to {dest}, and a printable worksheet for each (the "
          f"questions without the teacher notes) to {sheets}; open the lessons with: jupyter lab {dest}",
          file=sys.stderr)
    return 0



def _quick_first(nb: dict) -> None:
    """The lesson in quick mode: its first code cell sets SCALING_LAB_QUICK=1 before anything reads it."""
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
    text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    line = 'import os; os.environ["SCALING_LAB_QUICK"] = "1"  # quick mode: toy sizes (scaling-lab lessons --quick)\n'
    cell["source"] = (line + text).splitlines(keepends=True)
    nb.setdefault("metadata", {})["scaling_lab_quick"] = True


def _lang(text: str | None) -> str:
    from lab.i18n import lang_of
    try:
        return lang_of(text or "en")
    except ValueError as e:
        raise ConfigError(f"--lang: {e}") from None


def teacher_hash(token: str) -> str:
    import hashlib
    return hashlib.sha256(token.encode()).hexdigest()


def _workers(text: str | None) -> tuple[str, str | None, int | None]:
    """`--workers N | ray | ADDRESS` as (mode, Ray address, workers)."""
    if text is None:
        return "process", None, None
    if text == "ray":
        return "ray", None, None
    if ":" in text:
        return "ray", text, None
    try:
        n = integer(text)
    except argparse.ArgumentTypeError:   # not a number: refused below
        n = 0
    if n < 1:
        raise ConfigError(f"--workers must be a number of worker processes (1 or more), ray, or a Ray address "
                          f"(host:port or ray://host:port), got {text!r}")
    return "process", None, n


def _app(args) -> int:
    """Serve the app (notebooks/lab.ipynb) with Voila, and the training service beside it.

    The pages never train: the service's workers take what they queue. Ctrl-C or SIGTERM ends
    the server (and its kernels), then the workers; runs being trained go back to the queue."""
    import os
    import secrets
    import signal
    import subprocess
    import threading

    from lab.runqueue import RunQueue
    from lab.service import Service, default_workers
    from lab.store import RunStore
    notebook = notebooks_folder() / "lab.ipynb"
    mode, address, workers = _workers(args.workers)
    pool = args.class_size or 1
    if pool < 1 or pool > 200:
        raise ConfigError(f"--class must be between 1 and 200 pages, got {pool}")
    store = RunStore(args.store)
    queue = RunQueue(store)
    limits = {k: getattr(args, k) for k in LIMITS if getattr(args, k) is not None}
    if limits:
        queue.set_limits(**limits)
    limits = queue.limits()
    token = args.teacher_token or secrets.token_urlsafe(12)
    # pages never train: their kernels keep the system allocator (jemalloc keeps a process's peak
    # memory; only the service's workers, which train, run under it: lab.service)
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MALLOC_CONF")}
    env["SCALING_LAB_STORE"] = str(store.path.resolve())
    env["SCALING_LAB_TEACHER_SHA256"] = teacher_hash(token)
    env["SCALING_LAB_SERVICE"] = "external"           # pages follow this service, never start their own
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if limits["max_pages"]:
        env["SCALING_LAB_MAX_PAGES"] = str(limits["max_pages"])
    if args.lang:
        env["SCALING_LAB_LANG"] = _lang(args.lang)
    if args.class_size:
        env.setdefault("SCALING_LAB_REFILL_QUIET_S", "60")   # refills wait while a class's pages are opened
    n_workers = workers or (default_workers() if mode == "process" else 0)
    if args.class_size:
        mib = pool * PAGE_MIB + n_workers * WORKER_MIB + SERVER_MIB
        print(f"a class of {pool}: {pool} pages preheated (about {pool * PAGE_MIB:,} MiB), {n_workers or 'Ray'} "
              f"worker(s) (about {n_workers * WORKER_MIB:,} MiB once they have trained), the server (about "
              f"{SERVER_MIB} MiB): about {mib / 1024:.1f} GiB in all; warming up takes about {max(20, pool * 2)} s "
              "on 2 cores", file=sys.stderr)
    service = Service(store, workers=workers, mode=mode, address=address, max_batch=args.max_batch,
                      env=env).start()
    # From the repository root in a checkout, so that voila.json applies (its settings are also
    # given below); installed, from the notebooks' own folder (never from inside a package, whose
    # modules would shadow the standard library's for Voila).
    root = notebook.parents[1] if (notebook.parents[1] / "voila.json").is_file() else notebook.parent
    cmd = [sys.executable, "-m", "widgets.serve", str(notebook.relative_to(root)), f"--port={args.port}",
           f"--Voila.ip={args.ip}", "--Voila.port_retries=0", "--no-browser", "--show_tracebacks=False",
           "--preheat_kernel=True", f"--pool_size={pool}",
           # a busy server (thirty pages opening at once on two cores) falls seconds behind the
           # widget messages Lab() sends; at Voila's default 4 s the page's display is dropped and the
           # page stays blank (bench/bench_class.py: 0-1 of 30 ready; 30 of 30 at 120 s)
           f"--VoilaExecutor.iopub_timeout={IOPUB_TIMEOUT_S}",
           # a closing or reloading page asks Voila to shut its kernel down (a beacon POST, which
           # cannot carry the XSRF token); with the check on, every such request was refused (403)
           # and kernels were left to the heartbeat and the culler. The app's only POST is that
           # shutdown, by unguessable kernel id; cross-site DELETEs are stopped by CORS.
           "--Voila.tornado_settings", "disable_check_xsrf=True",
           # kernels whose page is gone (closed or reloaded tabs) and that sit idle are shut down
           f"--MappingKernelManager.cull_interval={max(1, min(60, args.cull_idle // 2))}",
           f"--MappingKernelManager.cull_idle_timeout={args.cull_idle}", "--MappingKernelManager.cull_connected=False"]
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT),
                                                    env.get("PYTHONPATH", "")) if p)
    server = subprocess.Popen(cmd, env=env, cwd=root, start_new_session=True, stdin=subprocess.DEVNULL)
    url = f"http://{args.ip}:{args.port}/"
    print(f"Scaling Lab: students open {url}\n  teacher (keep this link to yourself): {url}?teacher={token}\n"
          f"  {service.workers} {mode} worker(s) train what the pages ask; limits: {limits['max_queued']} queued run(s) "
          f"per page, {limits['max_tokens'] or 'no'} token limit per run, {limits['max_pages'] or 'no'} page limit. "
          "Ctrl-C stops everything", file=sys.stderr)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        while server.poll() is None and not stop.wait(0.5):
            pass
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)        # Voila shuts its kernels down, then exits
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        back = service.stop()
        print(f"stopped: the server, its pages and {service.workers} worker(s); {len(back)} run(s) back in the queue",
              file=sys.stderr)
    return 0 if stop.is_set() or server.returncode in (0, -signal.SIGTERM) else 1


def _worker(args) -> int:
    from lab.worker import worker_main
    return worker_main(args.store, max_batch=args.max_batch, name=args.name)


def _service(args) -> int:
    import signal
    import threading

    from lab.service import Service
    mode, address, workers = _workers(args.workers)
    service = Service(args.store, workers=workers, mode=mode, address=address, max_batch=args.max_batch,
                      parent=args.parent).start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5) and not service.stopping.is_set():
        pass
    back = service.stop()
    print(f"the training service stopped; {len(back)} run(s) back in the queue", file=sys.stderr)
    return 0


def _pack(args) -> int:
    from lab.pack import pack
    manifest = pack(args.store, args.file)
    print(f"packed {len(manifest['runs'])} runs ({len(manifest['weights'])} with weights) into {args.file}",
          file=sys.stderr)
    return 0


def _unpack(args) -> int:
    from lab.pack import unpack
    out = unpack(args.file, args.store)
    print(f"unpacked {args.file}: {len(out.added)} runs added ({out.weights} weights files), {len(out.kept)} "
          f"already in the store kept as they were", file=sys.stderr)
    return 0


