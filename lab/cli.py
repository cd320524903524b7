"""The command line: `scaling-lab train | sweep | runs | sample | fit | app` (also `python -m lab`).

Each subcommand's parser and runner live beside the concept they drive (train here; fit in
`lab.fit_cli`; runs, sweep and sample in `lab.store_cli`). A user's mistake ends with one
line on stderr, `error: ...`, and exit status 2; never a traceback.
"""

import argparse
import json
import math
import sys

from lab.config import ConfigError, RunConfig
from lab.schema import SETTINGS, cli_fix


IOPUB_TIMEOUT_S = 120   # how long Voila waits for a cell's last output after its reply (nbclient default 4)


def number(text: str) -> float:
    """A float that also reads `2e5`, `1_000` and `3k`/`2M`/`1G`."""
    s = str(text).strip().replace("_", "")
    mult = {"k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}.get(s[-1:].lower())
    try:
        value = float(s[:-1]) * mult if mult else float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (examples: 3e-3, 2e5, 200k)") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


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
        kw = dict(dest=s.key, default=s.default, metavar=s.metavar, help=f"{words} (default {_shown(s.default)})")
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
                       help=f"{s.sweep_help or s.help} (default {_shown(s.default)})")
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
    stored, held = {}, []
    if args.store is not None or not args.no_store:
        from lab.store import RunStore, StoreTracker
        store = RunStore(args.store)
        cfg, seeds, stored, held = _claim(store, cfg, seeds, force=args.force)
        trackers.append(StoreTracker(store))
    try:
        trained = train_seeds(cfg, seeds, trackers=trackers) if seeds else []
    except BaseException as e:          # the claims end with the training: failed, or interrupted (Ctrl-C)
        if held:
            store.release(held, status="failed" if isinstance(e, Exception) else "interrupted",
                          error=f"{type(e).__name__}: {e}")
        raise
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


def _claim(store, cfg: RunConfig, seeds: list, *, force: bool):
    """What `train` trains with a store: (config, seeds to train, {seed: stored result}, run ids
    claimed). A run the store holds finished is printed from it, not trained (said on stderr);
    `force` trains a new attempt beside it instead (never over it); a run another process is
    training is refused (StoreError: one line, exit status 2)."""
    from lab.store import StoreError, when_words
    configs = [cfg.replace(seed=s) for s in seeds]
    if force:
        k = store.claim_attempt(configs)
        cfg = cfg.replace(attempt=k)
        print(f"training attempt {k} of run {configs[0].run_id} (run {cfg.run_id}); the store keeps the runs it "
              "holds beside it", file=sys.stderr)
        return cfg, seeds, {}, [c.replace(attempt=k).run_id for c in configs]
    claims = [(c, store.claim(c)) for c in configs]
    held = [c.run_id for c, claim in claims if claim.status == "claimed"]
    busy = [(c, claim) for c, claim in claims if claim.status == "busy"]
    if busy:
        store.release(held, status="interrupted", error="not trained: another process was training a seed of it")
        c, claim = busy[0]
        raise StoreError(f"run {c.run_id} is being trained by another process ({claim.record.owner}) right now; "
                         f"wait for it to finish and run this again to print its result (see `scaling-lab runs "
                         f"--store {store.path}`)")
    stored = {}
    for c, claim in claims:
        if claim.status == "finished":
            rec = claim.record
            stored[c.seed] = store.get(c.run_id)
            print(f"run {c.run_id} is already in the store ({rec.status}, trained {when_words(rec.finished)}): "
                  "printed from the store without training; --force trains a new attempt beside it", file=sys.stderr)
    return cfg, [c.seed for c, claim in claims if claim.status == "claimed"], stored, held


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


def _app(args) -> int:
    """Serve the app (notebooks/lab.ipynb) with Voila; the kernel builds the widgets."""
    import os
    import subprocess
    from pathlib import Path
    notebook = notebooks_folder() / "lab.ipynb"
    from lab import runtime
    env = runtime.fast_allocator_env()     # every kernel trains under jemalloc (see lab.runtime)
    if args.store:
        env["SCALING_LAB_STORE"] = str(Path(args.store).resolve())
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")   # many kernels share one GPU
    # From the folder above the notebooks (in a checkout: the repository root, so that voila.json
    # applies; its settings are also given below); one preheated kernel makes the page ready
    # within seconds (the kernel's imports are already done when a user arrives).
    root = notebook.parents[1]
    cmd = [sys.executable, "-m", "voila", str(notebook.relative_to(root)), f"--port={args.port}",
           f"--Voila.ip={args.ip}", "--no-browser", "--show_tracebacks=False", "--preheat_kernel=True",
           "--pool_size=1",
           # a busy server (thirty pages opening at once on two cores) falls seconds behind the
           # hundreds of widget messages Lab() sends; at Voila's default 4 s the page's display is
           # dropped and the page stays blank (bench/bench_class.py: 0-1 of 30 ready; 30 of 30 at 120 s)
           f"--VoilaExecutor.iopub_timeout={IOPUB_TIMEOUT_S}",
           # a closing or reloading page asks Voila to shut its kernel down (a beacon POST, which
           # cannot carry the XSRF token); with the check on, every such request was refused (403)
           # and kernels were left to the heartbeat and the culler. The app's only POST is that
           # shutdown, by unguessable kernel id; cross-site DELETEs are stopped by CORS.
           "--Voila.tornado_settings", "disable_check_xsrf=True",
           # kernels whose page is gone (closed or reloaded tabs) and that sit idle are shut down
           f"--MappingKernelManager.cull_interval={max(1, min(60, args.cull_idle // 2))}",
           f"--MappingKernelManager.cull_idle_timeout={args.cull_idle}", "--MappingKernelManager.cull_connected=False"]
    print(f"Scaling Lab: open http://{args.ip}:{args.port}/ (Ctrl-C stops the server)", file=sys.stderr)
    try:
        return subprocess.call(cmd, env=env, cwd=root)
    except KeyboardInterrupt:
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
    p = sub.add_parser("app", help="serve the interactive lab with Voila", description="Serve the app in a browser.")
    p.add_argument("--port", type=integer, default=8866, help="port (default %(default)s)")
    p.add_argument("--ip", default="127.0.0.1", help="address to listen on (default %(default)s: this machine only)")
    p.add_argument("--store", default=None, metavar="PATH", help="run store folder")
    p.add_argument("--cull-idle", type=integer, default=300, metavar="SECONDS",
                   help="shut down kernels idle this long whose page is gone (default %(default)s)")
    p.set_defaults(func=_app)
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
    if sys.argv[1:2] != ["app"]:      # the app's kernels get it through their environment instead
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
