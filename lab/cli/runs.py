"""`scaling-lab train | sweep | runs | sample`: training into the run store, sweeps, the stored runs, text.

`train` trains one config (or several seeds of it through vmap) in this process and prints
each run's losses, size and compute; with a store (the default) a run the store holds finished
is printed from it, not trained again. `sweep` trains a plan (`lab.sweep`) through an executor,
skipping what is done; `runs` lists, exports and deletes; `sample` continues a prompt.
"""

import json
import math
import sys

from lab import schema
from lab.cli.options import (
    STORE_HELP,
    add_run_options,
    integer,
    integer_list,
    number,
    number_list,
    run_config,
)
from lab.config import ConfigError, ModelConfig, OptimConfig, RunConfig
from lab.trackers import STOP_REASONS

TABLE_COLUMNS = ("run_id", "status", "arch", "width", "depth", "optimizer", "lr", "seed", "tokens", "params_total",
                 "flops", "eval_loss", "epochs", "family", "attempts")
RESULT_KEYS = ("run_id", "status", "params_total", "params_non_embedding", "tokens", "flops", "train_loss",
               "eval_loss", "eval_bpb", "tokens_per_s", "first_step_s", "wall_s", "device", "epochs", "steps",
               "diverged_step", "unigram_loss", "entropy_rate", "dataset", "stopped")   # `train --json`, per run


def register(sub) -> None:
    p = sub.add_parser("train", help="train one model (or several seeds of it)",
                       description="Train a language model and report its losses, size and compute.")
    add_run_options(p)
    p.add_argument("--json", action="store_true", help="print a JSON list of run objects, one per seed, on stdout "
                   "(with --dry-run: one plan object for all the seeds)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--dry-run", action="store_true", help="check the config and print its size and cost; train nothing")
    p.add_argument("--store", default=None, metavar="PATH", help=STORE_HELP)
    p.add_argument("--no-store", action="store_true", help="do not record the run in the run store")
    p.add_argument("--force", action="store_true",
                   help="with a store: train even a run the store holds finished, as a new attempt stored beside it "
                        "under its own run id (the finished run is kept). Without --force such a run is printed "
                        "from the store without training; a run another process is training is refused")
    p.set_defaults(func=_train)

    p = sub.add_parser("runs", help="list, export or delete stored runs",
                       description="List the runs in the store (a table; --csv or --json to export), "
                                   "print a run's loss curve, or delete runs.")
    p.add_argument("--store", default=None, metavar="PATH", help=STORE_HELP)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV on stdout, one row a run (all columns)")
    fmt.add_argument("--json", action="store_true", help="a JSON list of run records on stdout")
    p.add_argument("--status", default=None, metavar="STATUS",
                   help="only runs with this status (done, diverged, running, interrupted, failed, cancelled)")
    p.add_argument("--curve", default=None, metavar="RUN_ID", help="print this run's loss curve (CSV)")
    p.add_argument("--delete", nargs="+", default=None, metavar="RUN_ID", help="delete these runs and their weights")
    p.add_argument("--force", action="store_true", help="with --delete: also runs another process is training")
    p.set_defaults(func=_runs)

    p = sub.add_parser("sweep", help="train a grid or IsoFLOP sweep into the store (resumable)",
                       description="Train every combination of the listed values (or IsoFLOP profiles with "
                                   "--isoflop), skipping runs already in the store; rerun the same command to "
                                   "resume after an interruption.")
    g = add_run_options(p, sweep=True)       # the run's flags, lists for --widths --depths --tokens ... --seeds
    p.set_defaults(param=None)               # no --param: standard, or μP for a ladder (see _plan)
    g.add_argument("--isoflop", type=number_list, default=None, metavar="C,...",
                   help="IsoFLOP budgets in FLOPs, e.g. 1e12,3e12: tokens per size from D = C / flops_per_token")
    g.add_argument("--isoflop-widths", type=integer_list, default=None, metavar="W,...",
                   help="model widths at every budget (default: --widths)")
    g.add_argument("--isoflop-sizes", type=integer, default=None, metavar="N",
                   help="instead of widths: N sizes per budget around the Chinchilla optimum")
    g.add_argument("--aspect", type=number, default=None, metavar="RATIO",
                   help="IsoFLOP depth rule: depth = round(width / RATIO) instead of a fixed depth")
    g.add_argument("--cooldowns", type=number_list, default=None, metavar="R,...",
                   help="each size at these tokens per parameter (e.g. 5,20,80) with --schedule wsd: one run at "
                        "the largest, the others as cooldowns branched from it (they cost only their decay); "
                        "the ladder's μP rules, as --tokens-per-param")
    g = p.add_argument_group("execution")
    g.add_argument("--store", default=None, metavar="PATH", help=STORE_HELP)
    g.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: in this process (default); ray: Ray tasks (local Ray, or --address)")
    g.add_argument("--address", default=None, metavar="ADDR", help="an existing Ray cluster, e.g. ray://head:10001")
    g.add_argument("--num-cpus", type=integer, default=None, metavar="N", help="CPUs of a local Ray (default all)")
    g.add_argument("--max-seeds", type=integer, default=16, metavar="K",
                   help="train up to K seeds of one config together through vmap (default %(default)s)")
    g.add_argument("--force", action="store_true", help="train every run again; a run finished in the store is kept and trained as a new attempt beside it")
    g.add_argument("--dry-run", action="store_true", help="print the plan (runs, FLOPs, estimated time); train nothing")
    g.add_argument("--json", action="store_true", help="print a JSON list of run records on stdout")
    g.add_argument("--quiet", action="store_true", help="no progress bar or summary on stderr")
    p.set_defaults(func=_sweep)

    p = sub.add_parser("sample", help="generate text with a stored model",
                       description="Continue a prompt with the model of a stored run.")
    p.add_argument("run_id", metavar="RUN_ID", help="a run id or a unique prefix (see `scaling-lab runs`)")
    p.add_argument("--prompt", default="", help="text to continue (default: none)")
    p.add_argument("--length", type=integer, default=200,
                   help="tokens to generate: bytes, or characters with character tokens (default %(default)s)")
    p.add_argument("--temperature", type=number, default=0.8, help="0 = greedy (default %(default)s)")
    p.add_argument("--seed", type=integer, default=0, help="sampling seed (default %(default)s)")
    p.add_argument("--store", default=None, metavar="PATH", help=STORE_HELP)
    p.set_defaults(func=_sample)


# --- train ----------------------------------------------------------------------------------

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
        data = load_dataset(cfg.data, cfg.model.vocab)
        data.check_fits(cfg.model.context)
        counts = param_counts(cfg.model)
        plan = {"run_id": cfg.run_id, "params_total": counts.total, "params_non_embedding": counts.non_embedding,
                "tokens": cfg.tokens_trained, "steps": cfg.steps, "flops": run_flops(cfg) * args.seeds,
                "memory_bytes": memory_bytes(cfg, args.seeds), "seeds": args.seeds, "data": data.description}
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
        if trackers:        # the progress line forecasts the final loss from the family's finished runs
            from lab.forecast import from_store
            trackers[0].forecaster = from_store(store, cfg)
        with store.claims(configs, again=args.force) as held:
            stored = _stored(store, held, force=args.force)
            trained = []
            if held.claimed:
                first = held.claimed[0]
                trained = train_seeds(first, [c.seed for c in held.claimed], trackers=[*trackers, StoreTracker(store)])
                held.claimed = []             # committed by the tracker
    results = sorted([*trained, *stored.values()], key=lambda r: r.config.seed)
    rows = [{k: r.to_dict()[k] for k in RESULT_KEYS} for r in results]
    if args.json:
        print(json.dumps(rows))                 # always a list: one run object per seed
    else:
        for r in rows:
            print(f"run {r['run_id']}: {r['status']}, validation loss {r['eval_loss']:.4f} nats/token "
                  f"({r['eval_bpb']:.3f} bits/byte; unigram baseline {r['unigram_loss']:.3f}), "
                  f"N={r['params_total']:,} (non-embedding {r['params_non_embedding']:,}), D={r['tokens']:,}, "
                  f"C={r['flops']:.3g} FLOPs, {r['tokens_per_s']:,.0f} tokens/s on {r['device']}"
                  + (f"; stopped at step {r['steps']:,} ({_stop_words(r['stopped'])})" if r["stopped"] else ""))
    return 0 if all(r["status"] != "diverged" for r in rows) else 1


def _stop_words(why: str) -> str:
    return schema.spell(STOP_REASONS[why], name=schema.cli_name)


def _stored(store, held, *, force: bool) -> dict:
    """`train`'s policy on the store's claims: a run the store holds finished is printed from it,
    not trained (said on stderr); `force` trains a new attempt beside it instead (never over it);
    a run another process is training is refused (StoreError: one line, exit status 2).
    Returns {seed: stored result}."""
    from lab.storedb import StoreError
    from lab.when import when_words
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


# --- runs ------------------------------------------------------------------------------------

def _runs(args) -> int:
    from lab.store import RunStore
    store = RunStore(args.store)
    if args.delete:
        deleted = store.delete(args.delete, force=args.force)
        print(f"deleted {len(deleted)} run(s): {', '.join(deleted)}", file=sys.stderr)
        return 0
    if args.curve:
        store.curve(store.resolve(args.curve)).to_csv(sys.stdout, index=False)
        return 0
    if args.json:
        print(json.dumps([r.to_dict() for r in store.records(args.status)]))
        return 0
    df = store.table()
    if args.status:
        df = df[df["status"] == args.status]
    if args.csv:
        df.to_csv(sys.stdout, index=False)
    elif not len(df):
        print(f"no runs in {store.path}" + (f" with status {args.status}" if args.status else "")
              + "; train some with `scaling-lab train` or `scaling-lab sweep`", file=sys.stderr)
    else:
        print(_format_table(df))
    return 0


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _format_table(df) -> str:
    # runs that repeat their data past MAX_EPOCHS are limited by data, not by the model: flagged
    from lab.laws import MAX_EPOCHS

    cols = list(TABLE_COLUMNS)
    if "cooldown_of" in df and (df["cooldown_of"].fillna(0) > 0).any():   # a cooldown: the tokens it branched from
        cols.insert(cols.index("tokens") + 1, "cooldown_of")
    df = df[cols].copy()
    fmt = {"lr": "{:g}".format, "flops": "{:.3g}".format, "eval_loss": "{:.4f}".format,
           "epochs": lambda v: f"{v:.2f}" + (" !" if v > MAX_EPOCHS else "")}
    for col, f in fmt.items():
        df[col] = ["-" if _missing(v) else f(v) for v in df[col]]
    for col in ("tokens", "params_total", "cooldown_of"):
        if col in df:
            df[col] = ["-" if _missing(v) or (col == "cooldown_of" and not v) else f"{int(v):,}" for v in df[col]]
    text = df.to_string(index=False)
    if any(str(v).endswith("!") for v in df["epochs"]):
        text += f"\n! over {MAX_EPOCHS:g} epochs: the run repeated its data that often, so its loss is limited by data"
    return text


# --- sweep -----------------------------------------------------------------------------------

def _plan(args):
    """The plan the flags ask for (`lab.plans.sweep` holds the rules of which go together): a ladder
    with --tokens-per-param, an IsoFLOP plan with --isoflop, otherwise a grid."""
    from lab import plans
    d, o, m = RunConfig(), OptimConfig(), ModelConfig()
    first = lambda values, default: values[0] if values else default
    kind = ("cooldowns" if args.cooldowns is not None else "ladder" if args.tokens_per_param
            else "isoflop" if args.isoflop is not None else "grid")
    if kind in ("ladder", "cooldowns") and args.isoflop is not None:
        raise ConfigError(f"--{'tokens-per-param' if kind == 'ladder' else 'cooldowns'} sets each run's tokens from "
                          "its size; leave out --isoflop")
    base = run_config(args, width=first(args.widths, m.width), depth=first(args.depths, m.depth),
                      optimizer=first(args.optimizers, o.name), lr=first(args.lrs, o.lr),
                      tokens=first(args.tokens, d.tokens) if kind == "grid" else args.batch * args.context,
                      seed=first(args.seeds, d.seed))
    keep = frozenset(path for path, given in (("optim.lr", args.lrs), ("model.param", args.param),
                                              ("eval_tokens", args.eval_tokens != d.eval_tokens)) if given)
    widths = args.widths
    if kind == "isoflop":   # --isoflop-widths, else --widths unless --isoflop-sizes picks them
        widths = args.isoflop_widths or (args.widths if args.isoflop_sizes is None else None)
    return plans.sweep(kind, base, widths=widths, depths=args.depths, tokens=args.tokens, optimizers=args.optimizers,
                       lrs=args.lrs, seeds=args.seeds, tokens_per_param=args.tokens_per_param or None,
                       budgets=args.isoflop, n_sizes=args.isoflop_sizes, aspect=args.aspect, keep=keep,
                       ratios=args.cooldowns)


def _sweep(args) -> int:
    from lab import runtime
    runtime.setup()
    from lab.executors import LocalExecutor, RayExecutor
    from lab.store import RunStore
    from lab.sweep import SweepBar, plan_estimate, run_sweep
    if args.max_seeds < 1:
        raise ConfigError(f"--max-seeds must be at least 1, got {args.max_seeds}")
    plan = _plan(args)
    cooling = any(c.cooldown_of for c in plan.configs)
    if cooling and (args.executor != "local" or args.force):
        raise ConfigError("--cooldowns trains in this process, each long run with its cooldowns; leave out "
                          + ("--executor ray" if args.executor != "local" else "--force"))
    store = RunStore(args.store)
    if args.dry_run:
        if args.json:
            est = plan_estimate(plan, store)
            print(json.dumps({"runs": [{"run_id": c.run_id, "width": c.model.width, "depth": c.model.depth,
                                        "optimizer": c.optim.name, "lr": c.optim.lr, "tokens": c.tokens_trained,
                                        "seed": c.seed, "budget": b} for c, b in zip(plan.configs, plan.budgets)],
                              "total_flops": plan.total_flops, "estimated_s": est.seconds,
                              "already_done": est.done, "refused": list(plan.refused)}))
        else:
            print(plan.summary(plan_estimate(plan, store)))
        return 0
    if cooling:
        return _cooldowns(args, plan, store)
    if args.executor == "ray":
        executor = RayExecutor(address=args.address, num_cpus=args.num_cpus, max_seeds=args.max_seeds)
    else:
        if args.address:
            raise ConfigError("--address needs --executor ray")
        executor = LocalExecutor(max_seeds=args.max_seeds)
    if not args.quiet:
        print(plan.summary(plan_estimate(plan, store)), file=sys.stderr)
    report = run_sweep(plan, store, executor=executor, force=args.force, trackers=[] if args.quiet else [SweepBar()])
    if not args.quiet:
        print(report.summary(), file=sys.stderr)
    if args.json:
        print(json.dumps([r.to_dict() for r in report.records]))
    elif report.records:
        import pandas as pd
        print(_format_table(pd.DataFrame([r.to_dict() for r in report.records])))
    return 0 if report.ok else 1


def _cooldowns(args, plan, store) -> int:
    """`sweep --cooldowns`: each long run trained once in this process, its cooldowns branched from it."""
    from lab.cooldown import run_cooldowns
    from lab.sweep import plan_estimate
    from lab.trackers import ProgressBar
    if not args.quiet:
        print(plan.summary(plan_estimate(plan, store)), file=sys.stderr)
    results = run_cooldowns(plan, store, trackers=[] if args.quiet else [ProgressBar()])
    records = [store.record(r.run_id) for r in results]
    if args.json:
        print(json.dumps([r.to_dict() for r in records]))
    elif records:
        import pandas as pd
        print(_format_table(pd.DataFrame([r.to_dict() for r in records])))
    return 0 if all(r.status == "done" for r in records) else 1


# --- sample ----------------------------------------------------------------------------------

def _sample(args) -> int:
    from lab import runtime
    runtime.setup()
    from lab.sample import sample
    text = sample(args.store, args.run_id, args.prompt, length=args.length, temperature=args.temperature,
                  seed=args.seed)
    sys.stdout.write(args.prompt + text + "\n")
    return 0
