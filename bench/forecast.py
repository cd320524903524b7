"""How far the final-loss forecast (lab.forecast) misses, measured on a store's finished runs.

`python -m bench.forecast [--store .ladder-store] [--at 0.25,0.5]`: for every finished run of the
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


def measure(store: RunStore, fractions) -> dict:
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
                     list(rec.result.curve)))
    out = {"store": str(store.path), "family": family, "runs": len(runs), "at": {}}
    for t in fractions:
        rows = []
        for size, n, d, final, pts in runs:
            others = [(n2, d2, f2, p2) for s2, n2, d2, f2, p2 in runs if s2 != size]
            fc = Forecaster(others).forecast(n, d, [p for p in pts if p["tokens_seen"] <= t * d + 1e-6], fraction=t)
            if fc is not None:
                rows.append({"width": size[0], "N": n, "measured": final, "forecast": fc.loss, "low": fc.low,
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
    p.add_argument("--json", default=str(ROOT / "bench" / "results" / "forecast.json"))
    args = p.parse_args(argv)
    out = measure(RunStore(args.store), [float(t) for t in args.at.split(",") if t.strip()])
    print(f"forecast final loss, {out['runs']} finished runs of family {out['family']} in {out['store']}:")
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
