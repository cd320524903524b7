"""The command line: `scaling-lab train | sweep | runs | sample | fit | app` (also `python -m lab`).

Each subcommand's parser and runner live beside the concept they drive (train here; fit in
`lab.fit_cli`; runs, sweep and sample in `lab.store_cli`). A user's mistake ends with one
line on stderr, `error: ...`, and exit status 2; never a traceback.
"""

import argparse
import json
import sys

from lab.config import ConfigError, RunConfig, default
from lab.schema import SETTINGS, cli_fix, number as schema_number


IOPUB_TIMEOUT_S = 120   # how long Voila waits for a cell's last output after its reply (nbclient default 4)


def number(text: str) -> float:
    """A flag's number: `lab.schema.number` (2e5, 1_000, 3k/2M/1G/1T), as argparse wants its errors."""
    try:
        return schema_number(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def integer(text: str) -> int:
    """A whole number that also reads `2e5` or `200k`."""
    value = number(text)
    if value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(value)


def integer_list(text: str) -> list[int]:
    return [integer(t) for t in str(text).split(",") if t.strip()]


def number_list(text: str) -> list[float]:
    return [number(t) for t in str(text).split(",") if t.strip()]


def names(text: str) -> list[str]:
    return [t.strip() for t in str(text).split(",") if t.strip()]


def data_settings(spec: str) -> dict:
    """`--data stdlib | builtin | markov | hf:NAME | PATH` as the settings `data.source` and `data.path`."""
    if spec in ("stdlib", "builtin", "markov"):
        return {"data.source": spec}
    if spec.startswith("hf:"):
        return {"data.source": "hf", "data.path": spec[3:]}
    return {"data.source": "file", "data.path": spec}


GROUPS = {"model": "model", "optim": "optimizer"}     # the rest: "data and run"


def _shown(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def add_run_options(p: argparse.ArgumentParser, *, sweep: bool = False):
    """A flag per setting of `lab.schema` that has one (name, type, default and help from there).

    A sweep takes a list of values for the settings with a `sweep_flag` (`--widths 32,64`); it
    returns the "sweep" argument group that holds those, for the sweep's own options."""
    groups, seen, listed = {}, set(), []
    for s in SETTINGS:
        flag = s.cli_flag
        if flag is None or flag in seen or (sweep and not s.sweep):
            continue
        seen.add(flag)                       # data.path shares --data with data.source
        if sweep and s.sweep_flag:
            listed.append(s)
            continue
        title = GROUPS.get(s.path.partition(".")[0] if "." in s.path else "", "data and run")
        if title not in groups:
            groups[title] = p.add_argument_group(title)
        words = s.sweep_help if sweep and s.sweep_help else s.help
        kw = dict(dest=s.key, default=default(s.path), metavar=s.metavar,
                  help=f"{words} (default {_shown(default(s.path))})")
        if s.key == "data":
            pass                             # a source name, hf:NAME or a file path: see data_settings
        elif s.kind == "choice":
            kw["choices"] = s.choices
        else:
            kw["type"] = {"int": integer, "float": number}.get(s.kind, str)
        groups[title].add_argument(flag, **kw)
    if not sweep:
        return None
    g = p.add_argument_group("sweep")
    for s in listed:
        g.add_argument(s.sweep_flag, type={"int": integer_list, "float": number_list}.get(s.kind, names),
                       default=None, metavar=f"{s.metavar or s.key.upper()},...",
                       help=f"{s.sweep_help or s.help} (default {_shown(default(s.path))})")
    return g


def run_config(args, **over) -> RunConfig:
    """A RunConfig from parsed options; `over` supplies the swept fields (by setting name: width=64)."""
    v = vars(args) | over
    values = {s.path: v[s.key] for s in SETTINGS      # None: not given (a sweep's --param), the default
              if s.config and s.cli_flag not in (None, "--data") and v.get(s.key) is not None}
    return RunConfig.from_settings(values | data_settings(v["data"]))


def _train(args) -> int:
    from lab import runtime
    runtime.setup()
    from lab.trackers import ProgressBar
    from lab.training import train_seeds
    cfg = run_config(args)
    if args.seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {args.seeds}")
    if args.dry_run:
        from lab.counting import memory_bytes, param_counts, run_flops
        from lab.data import load_dataset
        from lab.training import check_memory
        check_memory(cfg, args.seeds)
        load_dataset(cfg.data).check_fits(cfg.model.context)
        counts = param_counts(cfg.model)
        plan = {"run_id": cfg.run_id, "params_total": counts.total, "params_non_embedding": counts.non_embedding,
                "tokens": cfg.tokens_trained, "steps": cfg.steps, "flops": run_flops(cfg) * args.seeds,
                "memory_bytes": memory_bytes(cfg, args.seeds), "seeds": args.seeds}
        print(json.dumps(plan) if args.json else "\n".join(f"{k}: {v:,}" if isinstance(v, int) else f"{k}: {v}"
                                                           for k, v in plan.items()))
        return 0
    trackers = [] if args.quiet else [ProgressBar()]
    seeds = list(range(cfg.seed, cfg.seed + args.seeds))
    configs = [cfg.replace(seed=s) for s in seeds]
    if args.store is None and args.no_store:
        trained, stored = train_seeds(cfg, seeds, trackers=trackers), {}
    else:
        from lab.store import RunStore, StoreTracker
        store = RunStore(args.store)
        with store.claims(configs, again=args.force) as held:
            stored = _stored(store, held, force=args.force)
            trained = []
            if held.claimed:
                first = held.claimed[0]
                trained = train_seeds(first, [c.seed for c in held.claimed], trackers=[*trackers, StoreTracker(store)])
                held.claimed = []             # committed by the tracker
    results = sorted([*trained, *stored.values()], key=lambda r: r.config.seed)
    keys = ("run_id", "status", "params_total", "params_non_embedding", "tokens", "flops", "train_loss", "eval_loss",
            "eval_bpb", "tokens_per_s", "first_step_s", "wall_s", "device", "epochs", "steps", "diverged_step",
            "unigram_loss", "entropy_rate", "dataset", "stopped")
    rows = [{k: r.to_dict()[k] for k in keys} for r in results]
    if args.json:
        print(json.dumps(rows))                 # always a list: one run object per seed
    else:
        for r in rows:
            print(f"run {r['run_id']}: {r['status']}, validation loss {r['eval_loss']:.4f} nats/token "
                  f"({r['eval_bpb']:.3f} bits/byte; unigram baseline {r['unigram_loss']:.3f}), "
                  f"N={r['params_total']:,} (non-embedding {r['params_non_embedding']:,}), D={r['tokens']:,}, "
                  f"C={r['flops']:.3g} FLOPs, {r['tokens_per_s']:,.0f} tokens/s on {r['device']}"
                  + (f"; stopped at step {r['steps']:,} ({STOPS[r['stopped']]})" if r["stopped"] else ""))
    return 0 if all(r["status"] != "diverged" for r in rows) else 1


def _stored(store, held, *, force: bool) -> dict:
    """`train`'s policy on the store's claims: a run the store holds finished is printed from it,
    not trained (said on stderr); `force` trains a new attempt beside it instead (never over it);
    a run another process is training is refused (StoreError: one line, exit status 2).
    Returns {seed: stored result}."""
    from lab.store import StoreError, when_words
    if force:
        c = held.claimed[0]
        print(f"training attempt {held.attempt} of run {c.replace(attempt=0).run_id} (run {c.run_id}); the store "
              "keeps the runs it holds beside it", file=sys.stderr)
        return {}
    if held.busy:
        c = held.busy[0]
        held.give_back()
        held.claimed = []
        raise StoreError(f"run {c.run_id} is being trained by another process right now; wait for it to finish and "
                         f"run this again to print its result (see `scaling-lab runs --store {store.path}`)")
    stored = {}
    for run_id, rec in held.finished.items():
        stored[rec.config.seed] = store.get(run_id)
        print(f"run {run_id} is already in the store ({rec.status}, trained {when_words(rec.finished)}): "
              "printed from the store without training; --force trains a new attempt beside it", file=sys.stderr)
    return stored


STOPS = {"target": "the validation loss reached --target-loss",
         "patience": "the validation loss stopped improving for --patience evaluations"}


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `error: <what>; see <prog> --help`, exit status 2."""

    def error(self, message):
        self.exit(2, f"error: {message}; see `{self.prog} --help`\n")


def notebooks_folder():
    """The folder of the app and lesson notebooks: `notebooks/` in a checkout, else the copy
    installed with the package (`lab._notebooks`, see pyproject.toml)."""
    from pathlib import Path
    checkout = Path(__file__).resolve().parents[1] / "notebooks"
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
    """Copy the lesson notebooks into a folder of the user's, to open in JupyterLab."""
    import shutil
    from pathlib import Path
    src = notebooks_folder()
    dest = Path(args.folder)
    if dest.exists() and not dest.is_dir():
        raise ConfigError(f"{dest} is a file; give a folder to copy the lessons into")
    dest.mkdir(parents=True, exist_ok=True)
    lessons = sorted(src.glob("lesson*.ipynb"))
    clash = [p.name for p in lessons if (dest / p.name).exists()]
    if clash and not args.force:
        raise ConfigError(f"{dest} already holds {', '.join(clash)}; they would be overwritten: choose another folder "
                          "or pass --force")
    for p in lessons:
        shutil.copyfile(p, dest / p.name)
    print(f"copied {len(lessons)} lessons to {dest}; open them with: jupyter lab {dest}", file=sys.stderr)
    return 0


PAGE_MIB = 110      # a page kernel once the app is drawn, PSS (bench/README.md, "A class on one small server")
WORKER_MIB = 600    # a worker process after training the first-run preset (JAX, its compiled programs)
SERVER_MIB = 300    # Voila itself with a class's pages


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
    except argparse.ArgumentTypeError:
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
    from pathlib import Path

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
    limits = {k: v for k, v in (("max_queued", args.max_queued), ("max_tokens", args.max_tokens),
                                ("max_pages", args.max_pages)) if v is not None}
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
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(__file__).resolve().parents[1]),
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
    from lab.service import worker_main
    return worker_main(args.store, max_batch=args.max_batch, name=args.name)


def _service(args) -> int:
    from lab.service import Service
    import signal
    import threading
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


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="scaling-lab", description="Train language models and fit scaling laws.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("train", help="train one model (or several seeds of it)",
                       description="Train a language model and report its losses, size and compute.")
    add_run_options(p)
    p.add_argument("--json", action="store_true", help="print a JSON list of run objects, one per seed, on stdout "
                   "(with --dry-run: one plan object for all the seeds)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--dry-run", action="store_true", help="check the config and print its size and cost; train nothing")
    p.add_argument("--store", default=None, metavar="PATH", help="run store folder (default: $SCALING_LAB_STORE "
                   "or ~/.local/share/scaling-lab)")
    p.add_argument("--no-store", action="store_true", help="do not record the run in the run store")
    p.add_argument("--force", action="store_true",
                   help="with a store: train even a run the store holds finished, as a new attempt stored beside it "
                        "under its own run id (the finished run is kept). Without --force such a run is printed "
                        "from the store without training; a run another process is training is refused")
    p.set_defaults(func=_train)
    p = sub.add_parser("app", help="serve the interactive lab with Voila, and the training service",
                       description="Serve the app in a browser. Pages only show and ask; the training service's "
                                   "workers train what they ask, in a fair queue. Prints a student link and a teacher "
                                   "link (with a secret token).")
    p.add_argument("--port", type=integer, default=8866, help="port (default %(default)s)")
    p.add_argument("--ip", default="127.0.0.1", help="address to listen on (default %(default)s: this machine only)")
    p.add_argument("--store", default=None, metavar="PATH", help="run store folder")
    p.add_argument("--cull-idle", type=integer, default=300, metavar="SECONDS",
                   help="shut down kernels idle this long whose page is gone (default %(default)s)")
    p.add_argument("--workers", default=None, metavar="N|ray|ADDRESS",
                   help="training workers: a number of processes (default: one per two cores), ray (a local Ray) or "
                        "a Ray cluster's address; the server stays the store's single writer")
    p.add_argument("--max-batch", type=integer, default=None, metavar="K",
                   help="queued runs of one config (different seeds) trained together through vmap (default: 2 on "
                        "CPU, 16 on an accelerator)")
    p.add_argument("--class", dest="class_size", type=integer, default=None, metavar="N",
                   help="preheat N pages for a class (their memory is stated before the server starts)")
    p.add_argument("--max-pages", type=integer, default=None, metavar="N",
                   help="most pages open at once; the next visitor reads that the class is full")
    p.add_argument("--max-queued", type=integer, default=None, metavar="N",
                   help="runs a student's page may have waiting in the queue (default 3; the teacher: no limit)")
    p.add_argument("--max-tokens", type=integer, default=None, metavar="N",
                   help="most training tokens of one run a student may ask for (default: no limit)")
    p.add_argument("--teacher-token", default=None, metavar="TOKEN",
                   help="the teacher link's secret (default: a new random one each start)")
    p.set_defaults(func=_app)
    p = sub.add_parser("service", help="run the training service alone (workers that train queued runs)",
                       description="Train what pages of the app queue in the store, until Ctrl-C.")
    p.add_argument("--store", default=None, metavar="PATH", help="run store folder")
    p.add_argument("--workers", default=None, metavar="N|ray|ADDRESS", help="as for `app`")
    p.add_argument("--max-batch", type=integer, default=None, metavar="K", help="as for `app`")
    p.add_argument("--parent", type=integer, default=None, metavar="PID", help="stop when this process ends")
    p.set_defaults(func=_service)
    p = sub.add_parser("worker", help="one training worker (the service starts these)",
                       description="Train queued runs from the store until SIGTERM; its run goes back to the queue.")
    p.add_argument("--store", default=None, metavar="PATH", help="run store folder")
    p.add_argument("--max-batch", type=integer, default=None, metavar="K", help="as for `app`")
    p.add_argument("--name", default="worker", help="how its log lines are named")
    p.set_defaults(func=_worker)
    p = sub.add_parser("pack", help="write a store's finished runs into one file, for a class server",
                       description="Pack the store's finished runs (curves and weights) into FILE.")
    p.add_argument("store", metavar="STORE", help="the run store folder")
    p.add_argument("file", metavar="FILE", help="the pack to write (a .tar.gz)")
    p.set_defaults(func=_pack)
    p = sub.add_parser("unpack", help="add a pack's runs to a store (checked first)",
                       description="Check FILE (a pack) and add its runs to STORE; nothing is written unless it is "
                                   "sound.")
    p.add_argument("file", metavar="FILE", help="a pack made by `scaling-lab pack`")
    p.add_argument("store", metavar="STORE", help="the run store folder (created if missing)")
    p.set_defaults(func=_unpack)
    p = sub.add_parser("lessons", help="copy the lesson notebooks into a folder",
                       description="Copy the lesson notebooks (shipped with the package) into FOLDER.")
    p.add_argument("folder", metavar="FOLDER", help="where to copy them (created if missing)")
    p.add_argument("--force", action="store_true", help="overwrite lessons already in FOLDER")
    p.set_defaults(func=_lessons)
    for module in ("lab.store_cli", "lab.fit_cli"):
        try:
            mod = __import__(module, fromlist=["register"])
        except ModuleNotFoundError as e:  # a part not installed yet in this checkout
            if e.name != module:
                raise
            continue
        mod.register(sub)
    return parser


def entry() -> int:
    """The `scaling-lab` and `python -m lab` entry: restart under the fast allocator, then run."""
    from lab import runtime
    if sys.argv[1:2] not in (["app"], ["service"]):   # their workers and kernels get it through their environment
        runtime.reexec_with_fast_allocator(["-m", "lab", *sys.argv[1:]])
    return main()


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as e:       # settings spelled as this command's flags: "try --width 64"
        sweep = getattr(args, "command", None) == "sweep"
        print(f"error: {e.spelled(fix=lambda path, value: cli_fix(path, value, sweep=sweep))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `scaling-lab runs --csv | head`
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        # The store is consistent already (held runs are marked interrupted). Exit at once:
        # tearing JAX down in the middle of a compiled call can crash the interpreter.
        import os
        print("error: interrupted", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
