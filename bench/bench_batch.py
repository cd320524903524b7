"""Should the training service train queued runs of one config together? K seeds of the app's
first run (the "first run" preset: 32-wide, 2 layers, 100k tokens) through one vmapped
`train_seeds` call against the same K runs one after another, in interleaved rounds.

    python -m bench.bench_batch [--seeds 1,2,4,8] [--rounds 3]

Prints, per K, the wall time of the batch and of the K sequential runs (medians over rounds, both
measured in the same round after one warm-up of each program) and their ratio: above 1, the
batch serves K students sooner than K runs in a row. `lab.worker.default_batch` follows it.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def first_run():
    from lab.config import DataConfig, ModelConfig, OptimConfig, RunConfig
    return RunConfig(model=ModelConfig(width=32, depth=2, heads=4, context=64), data=DataConfig(source="builtin"),
                     optim=OptimConfig(name="adamw", lr=3e-3), tokens=100_000, batch=16)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="1,2,4,8", help="batch sizes K (default 1,2,4,8)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians reported (default 3)")
    args = p.parse_args(argv)
    from lab import runtime
    runtime.setup()
    from lab.training import train, train_seeds
    cfg = first_run()
    out = {"config": cfg.to_dict(), "rows": []}
    for k in [int(x) for x in args.seeds.split(",")]:
        seeds = list(range(100, 100 + k))
        train_seeds(cfg, seeds)                   # compile the K-seed program and the one-seed one
        train(cfg.replace(seed=99))
        batch, one_by_one = [], []
        for r in range(args.rounds):
            t = time.perf_counter()
            train_seeds(cfg, [s + 1000 * r for s in seeds])
            batch.append(time.perf_counter() - t)
            t = time.perf_counter()
            for s in seeds:
                train(cfg.replace(seed=s + 1000 * r + 500))
            one_by_one.append(time.perf_counter() - t)
        row = {"seeds": k, "batch_s": statistics.median(batch), "sequential_s": statistics.median(one_by_one),
               "rounds": args.rounds}
        row["speedup"] = row["sequential_s"] / row["batch_s"]
        out["rows"].append(row)
        print(f"K={k}: batch {row['batch_s']:.2f} s, one after another {row['sequential_s']:.2f} s, "
              f"speed-up {row['speedup']:.2f}x", flush=True)
    return out


if __name__ == "__main__":
    main()
