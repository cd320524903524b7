"""The command line: `scaling-lab train | sweep | runs | sample | fit | app` (also `python -m lab`).

Each subcommand's parser and runner live beside the concept they drive (train here; fit in
`lab.fit_cli`; runs, sweep and sample in `lab.store_cli`). A user's mistake ends with one
line on stderr, `error: ...`, and exit status 2; never a traceback.
"""

import argparse
import json
import math
import sys

from lab.config import (ARCHS, OPTIMIZERS, PARAMETERISATIONS, POSITIONS, SCHEDULES, ConfigError, DataConfig,
                        ModelConfig, OptimConfig, RunConfig)


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


def data_config(spec: str, args) -> DataConfig:
    """`--data stdlib | builtin | markov | hf:NAME | PATH`."""
    kw = dict(markov_order=args.markov_order, markov_symbols=args.markov_symbols)
    if spec in ("stdlib", "builtin", "markov"):
        return DataConfig(source=spec, **kw)
    if spec.startswith("hf:"):
        return DataConfig(source="hf", path=spec[3:], **kw)
    return DataConfig(source="file", path=spec, **kw)


def add_run_options(p: argparse.ArgumentParser, *, sweep: bool = False) -> None:
    """The options that describe one run (a sweep takes lists for some of them)."""
    d, o, m = RunConfig(), OptimConfig(), ModelConfig()
    g = p.add_argument_group("model")
    g.add_argument("--arch", choices=ARCHS, default=m.arch, help="gpt: decoder Transformer; lstm: the Kaplan baseline")
    if not sweep:
        g.add_argument("--width", type=integer, default=m.width, help="residual width d_model (default %(default)s)")
        g.add_argument("--depth", type=integer, default=m.depth, help="number of blocks / LSTM layers (default %(default)s)")
    g.add_argument("--heads", type=integer, default=m.heads, help="attention heads; must divide width (default %(default)s)")
    g.add_argument("--context", type=integer, default=m.context, help="tokens per sequence (default %(default)s)")
    g.add_argument("--positions", choices=POSITIONS, default=m.positions, help="learned table or rotary (RoPE)")
    g.add_argument("--param", choices=PARAMETERISATIONS, default=None,
                   help="standard (GPT-2) or mup (maximal update parameterisation: a learning rate tuned at "
                        f"--base-width transfers to other widths; default {m.param}, for a ladder mup)")
    g.add_argument("--base-width", type=integer, default=m.base_width,
                   help="with --param mup: the width where μP equals standard (default %(default)s)")
    g = p.add_argument_group("optimizer")
    if not sweep:
        g.add_argument("--optimizer", choices=OPTIMIZERS, default=o.name, metavar="NAME",
                       help=f"one of {', '.join(OPTIMIZERS)} (default %(default)s)")
        g.add_argument("--lr", type=number, default=o.lr, help="peak learning rate (default %(default)g)")
    g.add_argument("--schedule", choices=SCHEDULES, default=o.schedule, help="learning-rate shape after warmup")
    g.add_argument("--warmup", type=number, default=o.warmup, help="fraction of steps warming up (default %(default)g)")
    g.add_argument("--weight-decay", type=number, default=o.weight_decay, help="weight decay (default %(default)g)")
    g.add_argument("--clip", type=number, default=o.clip, help="gradient-norm clip, 0 = off (default %(default)g)")
    g = p.add_argument_group("data and run")
    if not sweep:
        g.add_argument("--tokens", type=integer, default=d.tokens, help="training tokens D, e.g. 2e5 (default %(default)g)")
        g.add_argument("--seed", type=integer, default=d.seed, help="random seed (default %(default)s)")
        g.add_argument("--seeds", type=integer, default=1,
                       help="train this many seeds (seed, seed+1, ...) at once through vmap (default 1)")
    g.add_argument("--tokens-per-param", type=number, default=0.0, metavar="R",
                   help="train each model on D = R x params_total tokens (Chinchilla: 20); replaces --tokens")
    g.add_argument("--batch", type=integer, default=d.batch, help="sequences per step (default %(default)s)")
    g.add_argument("--data", default=DataConfig().source, metavar="SOURCE",
                   help="stdlib (Python's standard library source, 11 MB, the default), builtin (Python's docs, "
                        "0.46 MB), markov (synthetic, known entropy), a text file, or hf:NAME (needs `datasets`)")
    g.add_argument("--markov-order", type=integer, default=DataConfig().markov_order, help="synthetic chain order")
    g.add_argument("--markov-symbols", type=integer, default=DataConfig().markov_symbols, help="synthetic alphabet")
    g.add_argument("--evals", type=integer, default=d.evals, help="validation evaluations per run (default %(default)s)")
    g.add_argument("--eval-tokens", type=integer, default=d.eval_tokens,
                   help="held-out tokens per evaluation (default %(default)s)")
    g.add_argument("--precision", choices=("auto", "fp32", "bf16"), default=d.precision,
                   help="auto: bf16 matmuls on GPU/TPU, fp32 on CPU")


def run_config(args, **over) -> RunConfig:
    """A RunConfig from parsed options; `over` supplies the swept fields."""
    v = vars(args) | over
    m = ModelConfig()
    return RunConfig(
        model=ModelConfig(arch=v["arch"], width=v["width"], depth=v["depth"], heads=v["heads"], context=v["context"],
                          positions=v["positions"], param=v["param"] or m.param, base_width=v["base_width"]),
        optim=OptimConfig(name=v["optimizer"], lr=v["lr"], schedule=v["schedule"], warmup=v["warmup"],
                          weight_decay=v["weight_decay"], clip=v["clip"]),
        data=data_config(v["data"], args), tokens=v["tokens"], batch=v["batch"], seed=v["seed"],
        evals=v["evals"], eval_tokens=v["eval_tokens"], precision=v["precision"], tokens_per_param=v["tokens_per_param"])


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
        load_dataset(cfg.data).check_fits(cfg.model.context, cfg.eval_tokens)
        counts = param_counts(cfg.model)
        plan = {"run_id": cfg.run_id, "params_total": counts.total, "params_non_embedding": counts.non_embedding,
                "tokens": cfg.tokens_trained, "steps": cfg.steps, "flops": run_flops(cfg) * args.seeds,
                "memory_bytes": memory_bytes(cfg, args.seeds), "seeds": args.seeds}
        print(json.dumps(plan) if args.json else "\n".join(f"{k}: {v:,}" if isinstance(v, int) else f"{k}: {v}"
                                                           for k, v in plan.items()))
        return 0
    trackers = [] if args.quiet else [ProgressBar()]
    store = None
    if args.store is not None or not args.no_store:
        from lab.store import RunStore, StoreTracker
        store = RunStore(args.store)
        trackers.append(StoreTracker(store))
    seeds = list(range(cfg.seed, cfg.seed + args.seeds))
    results = train_seeds(cfg, seeds, trackers=trackers)
    keys = ("run_id", "status", "params_total", "params_non_embedding", "tokens", "flops", "train_loss", "eval_loss",
            "eval_bpb", "tokens_per_s", "first_step_s", "wall_s", "device", "epochs", "steps", "diverged_step",
            "unigram_loss", "entropy_rate", "dataset")
    rows = [{k: r.to_dict()[k] for k in keys} for r in results]
    if args.json:
        print(json.dumps(rows[0] if len(rows) == 1 else rows))
    else:
        for r in rows:
            print(f"run {r['run_id']}: {r['status']}, validation loss {r['eval_loss']:.4f} nats/token "
                  f"({r['eval_bpb']:.3f} bits/byte; unigram baseline {r['unigram_loss']:.3f}), "
                  f"N={r['params_total']:,} (non-embedding {r['params_non_embedding']:,}), D={r['tokens']:,}, "
                  f"C={r['flops']:.3g} FLOPs, {r['tokens_per_s']:,.0f} tokens/s on {r['device']}")
    return 0 if all(r["status"] != "diverged" for r in rows) else 1


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `error: <what>; see <prog> --help`, exit status 2."""

    def error(self, message):
        self.exit(2, f"error: {message}; see `{self.prog} --help`\n")


def _app(args) -> int:
    """Serve the app (notebooks/lab.ipynb) with Voila; the kernel builds the widgets."""
    import os
    import subprocess
    from pathlib import Path
    notebook = Path(__file__).resolve().parents[1] / "notebooks" / "lab.ipynb"
    if not notebook.exists():
        raise ConfigError(f"the app notebook {notebook} is missing; run from a checkout of scaling-lab")
    from lab import runtime
    env = runtime.fast_allocator_env()     # every kernel trains under jemalloc (see lab.runtime)
    if args.store:
        env["SCALING_LAB_STORE"] = str(Path(args.store).resolve())
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")   # many kernels share one GPU
    # From the repository root, so that voila.json applies; one preheated kernel makes the
    # page ready within seconds (the kernel's imports are already done when a user arrives).
    root = notebook.parents[1]
    cmd = [sys.executable, "-m", "voila", str(notebook.relative_to(root)), f"--port={args.port}",
           f"--Voila.ip={args.ip}", "--no-browser", "--show_tracebacks=False", "--preheat_kernel=True",
           "--pool_size=1",
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
    p.add_argument("--json", action="store_true", help="print one JSON object (a list for several seeds) on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--dry-run", action="store_true", help="check the config and print its size and cost; train nothing")
    p.add_argument("--store", default=None, metavar="PATH", help="run store folder (default: $SCALING_LAB_STORE "
                   "or ~/.local/share/scaling-lab)")
    p.add_argument("--no-store", action="store_true", help="do not record the run in the run store")
    p.set_defaults(func=_train)
    p = sub.add_parser("app", help="serve the interactive lab with Voila", description="Serve the app in a browser.")
    p.add_argument("--port", type=integer, default=8866, help="port (default %(default)s)")
    p.add_argument("--ip", default="127.0.0.1", help="address to listen on (default %(default)s: this machine only)")
    p.add_argument("--store", default=None, metavar="PATH", help="run store folder")
    p.add_argument("--cull-idle", type=integer, default=300, metavar="SECONDS",
                   help="shut down kernels idle this long whose page is gone (default %(default)s)")
    p.set_defaults(func=_app)
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
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
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
