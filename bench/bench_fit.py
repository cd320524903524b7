"""Benchmark the Chinchilla fit and its bootstrap against the naive approach, on the 245 digitised points.

    python bench/bench_fit.py [--json out.json] [--repeats 5] [--naive-starts 90] [--full-naive]

Ours: lab.fit.fit_chinchilla (objective on all 4,500 grid starts at once, batched Newton from
the best 64, L-BFGS-B polish) and lab.fit.bootstrap (1,000 resamples refitted together).
Reference, measured in the same run: scipy L-BFGS-B with numerical gradients and default
tolerances from each grid start in a Python loop (as in most replications), timed on an evenly
spaced subset of the starts and scaled to all 4,500 (--full-naive runs them all); and, for
the bootstrap, a Python loop of the same L-BFGS-B per resample, warm-started from the
full-data optimum (a generous reference: no multi-start per resample), scaled to 1,000.
"""

import argparse
import csv
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout without installing

from lab import fit as F  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "chinchilla" / "svg_extracted_data.csv"


def load(path: Path):
    with open(path, newline="") as fh:        # csv, not a comment-aware loader: colours hold '#'
        rows = list(csv.DictReader(fh))
    N = np.array([float(r["Model Size"]) for r in rows])
    C = np.array([float(r["Training FLOP"]) for r in rows])
    return N, C / (6 * N), np.array([float(r["loss"]) for r in rows])


def huber_sum(p, lN, lD, y, w=None, delta=F.DELTA):
    """The naive objective: summed Huber of LSE(a − α log N, b − β log D, e) − log L, natural parameters."""
    a, b, e, alpha, beta = p
    r = logsumexp([a - alpha * lN, b - beta * lD, np.full_like(lN, e)], axis=0) - y
    h = np.where(np.abs(r) <= delta, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta))
    return float(h.sum() if w is None else (w * h).sum())


def grid_starts() -> np.ndarray:
    g = F.CHINCHILLA_GRID
    return np.array([(a, b, e, al, be) for al in g["alpha"] for be in g["beta"] for e in g["e"]
                     for a in g["a"] for b in g["b"]])


def timed(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", metavar="PATH", help="also write the results to this JSON file")
    p.add_argument("--data", default=str(DATA), help="svg_extracted_data.csv (default: ../shared/data/chinchilla)")
    p.add_argument("--repeats", type=int, default=5, help="repeats of our fit; median reported (default 5)")
    p.add_argument("--boot-repeats", type=int, default=3, help="repeats of our 1,000-resample bootstrap (default 3)")
    p.add_argument("--naive-starts", type=int, default=90, help="grid starts timed for the naive fit (default 90)")
    p.add_argument("--naive-resamples", type=int, default=20, help="resamples timed for the naive bootstrap")
    p.add_argument("--full-naive", action="store_true", help="run the naive fit from all 4,500 starts (minutes)")
    args = p.parse_args(argv)
    if not Path(args.data).exists():
        raise SystemExit(f"error: {args.data} not found; pass --data PATH to svg_extracted_data.csv")
    N, D, L = load(Path(args.data))
    lN, lD, y = np.log(N), np.log(D), np.log(L)

    fit_s, fit = timed(lambda: F.fit_chinchilla(N, D, L), args.repeats)
    boot_s, boot = timed(lambda: F.bootstrap(N, D, L, n=1000, seed=0), args.boot_repeats)

    starts = grid_starts()
    subset = starts if args.full_naive else starts[np.linspace(0, len(starts) - 1, args.naive_starts).astype(int)]
    t = time.perf_counter()
    naive = [minimize(huber_sum, x0, args=(lN, lD, y), method="L-BFGS-B") for x0 in subset]
    naive_fit_s = (time.perf_counter() - t) * len(starts) / len(subset)
    naive_best = min(r.fun for r in naive)

    x_hat = np.array([math.log(fit.A), math.log(fit.B), math.log(fit.E), fit.alpha, fit.beta])
    W = np.random.default_rng(0).multinomial(len(N), np.full(len(N), 1 / len(N)), size=args.naive_resamples)
    t = time.perf_counter()
    for w in W:
        minimize(huber_sum, x_hat, args=(lN, lD, y, w), method="L-BFGS-B")
    naive_boot_s = (time.perf_counter() - t) * 1000 / args.naive_resamples

    out = {
        "n_points": int(N.size),
        "fit_s": fit_s, "fit_objective": fit.objective, "fit_converged": fit.converged,
        "bootstrap_1000_s": boot_s, "bootstrap_converged": boot.n_converged,
        "naive_fit_s": naive_fit_s, "naive_fit_starts_timed": len(subset),
        "naive_fit_extrapolated": len(subset) < len(starts),
        "naive_best_objective": naive_best,
        "naive_bootstrap_1000_s": naive_boot_s, "naive_bootstrap_resamples_timed": int(args.naive_resamples),
        "fit_speedup": naive_fit_s / fit_s, "bootstrap_speedup": naive_boot_s / boot_s,
    }
    scaled = "" if args.full_naive else f", scaled from {len(subset)} starts"
    print(f"Chinchilla fit, {N.size} points (median of {args.repeats}): {fit_s:.3f} s, objective {fit.objective:.10g}"
          f"\n  naive L-BFGS-B, numerical gradients, 4,500 starts: {naive_fit_s:.1f} s{scaled}; "
          f"best objective {naive_best:.10g}  -> {out['fit_speedup']:.0f}x"
          f"\nbootstrap, 1,000 resamples (median of {args.boot_repeats}): {boot_s:.2f} s, "
          f"{boot.n_converged} converged"
          f"\n  naive loop, warm-started L-BFGS-B per resample: {naive_boot_s:.1f} s, scaled from "
          f"{args.naive_resamples}  -> {out['bootstrap_speedup']:.0f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
