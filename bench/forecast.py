"""How far the final-loss forecast (lab.forecast) misses, measured on a store's finished runs.

`python -m bench.forecast [--store .ladder-store] [--at 0.25,0.5] [--learn-seeds 0 --check-seeds 1]`: for every finished run of the
store's largest family, the forecast made from its own curve cut at each fraction of its tokens
and from the family's other sizes (every seed of its own size left out, as for a size never
trained), against its measured final validation loss. Prints the median and largest relative
error and how often the 90 % interval held the measurement; writes bench/results/forecast.json.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from lab.forecast import Forecaster
from lab.store import RunStore

ROOT = Path(__file__).resolve().parents[1]


def measure(store: RunStore, fractions, *, learn_seeds=None, check_seeds=None) -> dict:
    """Forecast errors per fraction. `learn_seeds`: learn only from runs of these seeds;
    `check_seeds`: forecast only runs of these (a blind check when the forecaster's design was
    chosen on other seeds' curves)."""
    df = store.finished_table()
    df = df[df["status"] == "done"]
    if df.empty:
        raise SystemExit(f"no finished runs in {store.path}; train some first (e.g. make ladder)")
    family = df["family"].value_counts().index[0]
    df = df[df["family"] == family]
    runs = []
    for r in df.itertuples():
        rec = store.record(r.run_id, curve=True)
        runs.append(((r.width, r.depth), float(r.params_total), float(r.planned_tokens), float(r.eval_loss),
                     list(rec.result.curve), int(r.seed)))
    out = {"store": str(store.path), "family": family, "runs": len(runs),
           "learn_seeds": None if learn_seeds is None else sorted(learn_seeds),
           "check_seeds": None if check_seeds is None else sorted(check_seeds), "at": {}}
    for t in fractions:
        rows = []
        for size, n, d, final, pts, seed in runs:
            if check_seeds is not None and seed not in check_seeds:
                continue
            others = [(n2, d2, f2, p2) for s2, n2, d2, f2, p2, k2 in runs
                      if s2 != size and (learn_seeds is None or k2 in learn_seeds)]
            fc = Forecaster(others).forecast(n, d, [p for p in pts if p["tokens_seen"] <= t * d + 1e-6], fraction=t)
            if fc is not None:
                rows.append({"width": size[0], "seed": seed, "N": n, "measured": final, "forecast": fc.loss, "low": fc.low,
                             "high": fc.high, "rel_error": fc.loss / final - 1, "held": fc.low <= final <= fc.high})
        e = np.abs([r["rel_error"] for r in rows])
        out["at"][f"{t:g}"] = {"n": len(rows), "median_abs": float(np.median(e)) if rows else None,
                               "max_abs": float(e.max()) if rows else None,
                               "mean": float(np.mean([r["rel_error"] for r in rows])) if rows else None,
                               "held": float(np.mean([r["held"] for r in rows])) if rows else None, "rows": rows}
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m bench.forecast", description=__doc__.split("\n\n")[0])
    p.add_argument("--store", default=str(ROOT / ".ladder-store"), help="run store (default .ladder-store)")
    p.add_argument("--at", default="0.25,0.5", help="fractions of the tokens (default 0.25,0.5)")
    p.add_argument("--learn-seeds", default=None, help="learn only from these seeds' runs, e.g. 0")
    p.add_argument("--check-seeds", default=None, help="forecast only these seeds' runs, e.g. 1")
    p.add_argument("--json", default=str(ROOT / "bench" / "results" / "forecast.json"))
    args = p.parse_args(argv)
    seeds = lambda text: None if text is None else {int(k) for k in text.split(",") if k.strip()}
    out = measure(RunStore(args.store), [float(t) for t in args.at.split(",") if t.strip()],
                  learn_seeds=seeds(args.learn_seeds), check_seeds=seeds(args.check_seeds))
    print(f"forecast final loss, {out['runs']} finished runs of family {out['family']} in {out['store']}"
          + (f", learnt from seeds {sorted(out['learn_seeds'])}" if out["learn_seeds"] is not None else "")
          + (f", checked on seeds {sorted(out['check_seeds'])}" if out["check_seeds"] is not None else "") + ":")
    for t, a in out["at"].items():
        if a["n"]:
            print(f"  at {float(t):.0%} of the tokens: {a['n']} runs, median |error| {a['median_abs']:.2%}, "
                  f"largest {a['max_abs']:.2%}, mean {a['mean']:+.2%}; 90 % interval held {a['held']:.0%}")
        else:
            print(f"  at {float(t):.0%} of the tokens: no forecast (too few finished runs of other sizes)")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
