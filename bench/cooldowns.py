"""`make cooldowns` (`python -m bench.cooldowns`): shorter runs as WSD cooldowns of one long run.

For each width (the ladder's μP rules), one WSD run at the longest ratio of tokens per parameter,
branched into cooldowns at the shorter ratios (`lab.cooldown`), beside a WSD run of each shorter
length trained from the start (its own warmup). Prints, per width and ratio, both validation
losses and their difference, and the tokens trained both ways: what the branches saved.

    python -m bench.cooldowns [--widths 40,56] [--ratios 10,20,40] [--seeds 0] [--tiny] [--json FILE]
"""

import argparse
import sys
import time

from bench import save_report


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m bench.cooldowns", description=__doc__.split("\n")[0])
    p.add_argument("--widths", default="40,56")
    p.add_argument("--ratios", default="10,20,40", help="tokens per parameter; the largest is the long run")
    p.add_argument("--seeds", default="0")
    p.add_argument("--data", default="stdlib")
    p.add_argument("--tiny", action="store_true", help="width 16, ratios 5,10,20 on the small corpus: a smoke run")
    p.add_argument("--json", default=None, help="output file (default bench/results/cooldowns-<time>.json)")
    args = p.parse_args(argv)
    from lab import runtime
    runtime.setup()
    from lab.config import DataConfig, ModelConfig, OptimConfig, RunConfig
    from lab.cooldown import train_cooldowns
    from lab.counting import param_counts
    from lab.plans import ladder_base
    from lab.training import train_seeds
    if args.tiny:
        args.widths, args.ratios, args.data = "16", "5,10,20", "builtin"
    widths = [int(w) for w in args.widths.split(",")]
    ratios = sorted(float(r) for r in args.ratios.split(","))
    seeds = [int(s) for s in args.seeds.split(",")]
    report = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "widths": widths, "ratios": ratios, "seeds": seeds,
              "data": args.data, "rows": []}
    for w in widths:
        base = ladder_base(RunConfig(model=ModelConfig(width=w, base_width=32, depth=1 if args.tiny else 2),
                                     optim=OptimConfig(schedule="wsd"), data=DataConfig(source=args.data),
                                     eval_tokens=4096 if args.tiny else 16_384))
        n = param_counts(base.model).total
        long = base.replace(tokens=round(ratios[-1] * n))
        shorts = [round(r * n) for r in ratios[:-1]]
        t0 = time.perf_counter()
        branched = train_cooldowns(long, shorts, seeds=seeds)
        t_branched = time.perf_counter() - t0
        for r, d in zip(ratios[:-1], shorts):
            t1 = time.perf_counter()
            alone = train_seeds(base.replace(tokens=d), seeds)
            t_alone = time.perf_counter() - t1
            cooled = branched[d]
            row = {"width": w, "N": n, "ratio": r, "tokens": cooled[0].tokens,
                   "cooldown_loss": [x.eval_loss for x in cooled], "scratch_loss": [x.eval_loss for x in alone],
                   "cooldown_tokens": (cooled[0].steps - cooled[0].config.decay_start) * long.tokens_per_step,
                   "scratch_s": t_alone}
            row["diff"] = sum(row["cooldown_loss"]) / len(seeds) - sum(row["scratch_loss"]) / len(seeds)
            report["rows"].append(row)
            print(f"width {w:>3} ({n:,} params) {r:g} tokens/param: cooldown {row['cooldown_loss'][0]:.4f}, from the "
                  f"start {row['scratch_loss'][0]:.4f} (diff {row['diff']:+.4f}); the cooldown trained "
                  f"{row['cooldown_tokens']:,} of its {row['tokens']:,} tokens", file=sys.stderr, flush=True)
        report["rows"].append({"width": w, "N": n, "ratio": ratios[-1], "long_tokens": branched[long.tokens][0].tokens,
                               "long_loss": [x.eval_loss for x in branched[long.tokens]], "together_s": t_branched})
    print("\n| width | tokens/param | cooldown loss | from the start | difference | tokens trained for it |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in report["rows"]:
        if "diff" in row:
            print(f"| {row['width']} | {row['ratio']:g} | {sum(row['cooldown_loss']) / len(seeds):.4f} | "
                  f"{sum(row['scratch_loss']) / len(seeds):.4f} | {row['diff'] / (sum(row['scratch_loss']) / len(seeds)):+.2%} | "
                  f"{row['cooldown_tokens']:,} of {row['tokens']:,} |")
    shared = sum(r["tokens"] for r in report["rows"] if "diff" in r)
    extra = sum(r["cooldown_tokens"] for r in report["rows"] if "diff" in r)
    longs = sum(r["long_tokens"] for r in report["rows"] if "long_tokens" in r)
    report["saved"] = 1 - (longs + extra) / (longs + shared)
    print(f"\nall lengths from the start: {longs + shared:,} tokens; as cooldowns: {longs + extra:,} "
          f"({report['saved']:.0%} fewer)")
    print(f"wrote {save_report(report, 'cooldowns', args.json)}")
    return report


if __name__ == "__main__":
    main()
