"""Does a learning rate tuned on a small model hold on a big one? μP against the standard parameterisation.

    python -m bench.lr_transfer                      # widths 32 and 256, μP and standard (~25 min on 2 cores)
    python -m bench.lr_transfer --widths 32,256 --params mup --tokens 1e6 --lrs 1e-3,2e-3,4e-3,8e-3,1.6e-2
    python -m bench.lr_transfer --tiny               # a smoke run in a minute (the test suite's)

For each parameterisation and width, the same learning-rate grid is trained on the same
number of tokens (a fixed budget, so that the widths differ in size only) with the given
seeds; the best rate is the minimum of a parabola through the lowest point and its two
neighbours in log(lr) (the grid point itself at an edge). Prints a table and the ratio of
the best rates between the smallest and the largest width: μP promises a ratio near 1
(Yang et al. 2022); the issue's bar is within a factor 2. Writes JSON with every loss.
"""

import argparse
import math
import sys
import time

import numpy as np

from bench import save_report


def best_lr(lrs: list[float], losses: list[float]) -> float:
    """The learning rate at the minimum of a parabola in log(lr) through the best point and its
    neighbours; the best grid point itself when it sits at an edge of the grid."""
    i = int(np.nanargmin(losses))
    if i == 0 or i == len(lrs) - 1:
        return float(lrs[i])
    x, y = np.log(lrs[i - 1:i + 2]), np.asarray(losses[i - 1:i + 2])
    a, b, _ = np.polyfit(x, y, 2)
    return float(math.exp(-b / (2 * a))) if a > 0 else float(lrs[i])


def sweep(param: str, width: int, lrs: list[float], tokens: int, seeds: list[int], depth: int, base_width: int,
          data: str, head_dim: int = 0, eval_tokens: int = 32768) -> list[dict]:
    from lab import DataConfig, ModelConfig, OptimConfig, RunConfig, train_seeds
    rows = []
    for lr in lrs:
        cfg = RunConfig(model=ModelConfig(width=width, depth=depth, param=param, base_width=base_width,
                                          head_dim=head_dim),
                        optim=OptimConfig(lr=lr), data=DataConfig(source=data), tokens=tokens,
                        eval_tokens=eval_tokens)
        t = time.perf_counter()
        results = train_seeds(cfg, seeds)
        losses = [r.eval_loss if r.status == "done" else math.nan for r in results]
        rows.append({"param": param, "width": width, "lr": lr, "losses": losses,
                     "mean": float(np.mean(losses)), "wall_s": time.perf_counter() - t})
        print(f"  {param:>8} width {width:>4} lr {lr:<8.3g} loss {rows[-1]['mean']:.4f} "
              f"({', '.join(f'{l:.4f}' for l in losses)}) {rows[-1]['wall_s']:.0f} s", file=sys.stderr, flush=True)
    return rows


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m bench.lr_transfer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--widths", default="32,256")
    p.add_argument("--params", default="mup,standard", help="parameterisations to compare")
    p.add_argument("--lrs", default="1e-3,2e-3,4e-3,8e-3,1.6e-2")
    p.add_argument("--tokens", type=float, default=1e6, help="training tokens of every run (default 1e6)")
    p.add_argument("--seeds", default="0")
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--base-width", type=int, default=32, help="μP's base width (default: the smallest width)")
    p.add_argument("--data", default="stdlib")
    p.add_argument("--head-dim", type=int, default=0, help="a fixed head size (heads follow the width); 0: 4 heads")
    p.add_argument("--eval-tokens", type=int, default=32768, help="held-out tokens per evaluation (default 32768)")
    p.add_argument("--tiny", action="store_true",
                   help="widths 16,64, three rates, 20k tokens of the small docs corpus, 4096 evaluation tokens: a "
                        "smoke run")
    p.add_argument("--json", default=None, help="output file (default bench/results/lr_transfer-<time>.json)")
    args = p.parse_args(argv)
    from lab import runtime
    runtime.setup()
    if args.tiny:
        args.widths, args.lrs, args.tokens, args.base_width, args.depth = "16,64", "2e-3,8e-3,3.2e-2", 20_000, 16, 1
        args.data, args.eval_tokens = "builtin", 4096
    widths = [int(w) for w in args.widths.split(",")]
    lrs = sorted(float(x) for x in args.lrs.split(","))
    seeds = [int(s) for s in args.seeds.split(",")]
    report = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "tokens": int(args.tokens), "seeds": seeds, "lrs": lrs,
              "head_dim": args.head_dim,
              "depth": args.depth, "base_width": args.base_width, "data": args.data, "rows": [], "best": {}}
    for param in args.params.split(","):
        for w in widths:
            rows = sweep(param, w, lrs, int(args.tokens), seeds, args.depth, args.base_width, args.data,
                         args.head_dim, args.eval_tokens)
            report["rows"] += rows
            report["best"].setdefault(param, {})[w] = best_lr(lrs, [r["mean"] for r in rows])
    print(f"\nbest learning rate per width ({int(args.tokens):,} tokens, depth {args.depth}, seeds {seeds}):")
    print("| parameterisation | " + " | ".join(f"width {w}" for w in widths) + f" | ratio {widths[-1]}/{widths[0]} |")
    print("| --- " * (len(widths) + 2) + "|")
    for param, best in report["best"].items():
        ratio = best[widths[-1]] / best[widths[0]]
        report.setdefault("ratio", {})[param] = ratio
        print(f"| {param} | " + " | ".join(f"{best[w]:.3g}" for w in widths) + f" | {ratio:.2f} |")
    print(f"wrote {save_report(report, 'lr_transfer', args.json)}")
    return report


if __name__ == "__main__":
    main()
