"""The app's overhead: one run trained through the app against the same run headless.

    python -m bench --only app        (or: python bench/bench_app.py [--rounds 3])

Through the app means what pressing Train does: the page asks the training service's queue
(`widgets.Controller.train.run` in an asyncio loop), a worker of the service (here a thread of
this process, `service="thread"`) takes it from the store and trains it, and the page follows the
store, drawing every chunk into the app's widgets (the FigureWidget's curves, progress bar,
readouts; state serialised for a front end that is not there). Headless means `lab.train` of the identical config in the
same process, nothing attached. Rounds alternate (app, headless, app, ...); medians reported:
steady-state tokens/s (as `RunResult.tokens_per_s`: the first compiled call excluded) and the
wall time of the whole run from the click to the result, store writes and final redraw included.
"""

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout without installing

SHAPE = (64, 2, 64, 32)          # the smallest bench shape: short chunks, so per-chunk UI work shows most


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="app/headless pairs; medians reported (default 3)")
    p.add_argument("--calls", type=int, default=12, help="compiled calls per run (default 12)")
    args = p.parse_args(argv)
    os.environ.pop("SCALING_LAB_QUICK", None)
    from bench.bench_train import config_for
    from lab.training import auto_chunk, train
    from widgets import Lab

    w, d, t, b = SHAPE
    chunk = auto_chunk(config_for(w, d, t, b, 16))
    steps = chunk * args.calls
    with tempfile.TemporaryDirectory() as store_dir:
        os.environ["SCALING_LAB_STORE"] = store_dir
        app = Lab(service="thread")

        def through_app(seed):
            cfg = config_for(w, d, t, b, steps, seed=seed)
            t0 = time.perf_counter()
            out = asyncio.run(app.controller.train.run(cfg))
            wall = time.perf_counter() - t0
            if app.state.error or not out or out[0].status != "done":
                raise RuntimeError(f"the app's run did not finish: {app.state.error or out}")
            return out[0].tokens_per_s, wall

        def headless(seed):
            cfg = config_for(w, d, t, b, steps, seed=seed)
            t0 = time.perf_counter()
            r = train(cfg, chunk=chunk)
            return r.tokens_per_s, time.perf_counter() - t0

        through_app(100)                  # compile both programs (train chunk, eval) outside the rounds
        app_runs, plain_runs = [], []
        for r in range(args.rounds):
            app_runs.append(through_app(r + 1))
            plain_runs.append(headless(r + 1))
    out = {"shape": list(SHAPE), "steps": steps, "chunk": chunk,
           "app_tokens_per_s": statistics.median(x[0] for x in app_runs),
           "headless_tokens_per_s": statistics.median(x[0] for x in plain_runs),
           "app_wall_s": statistics.median(x[1] for x in app_runs),
           "headless_wall_s": statistics.median(x[1] for x in plain_runs),
           "app_rounds": app_runs, "headless_rounds": plain_runs}
    out["throughput_ratio"] = out["app_tokens_per_s"] / out["headless_tokens_per_s"]
    out["wall_ratio"] = out["app_wall_s"] / out["headless_wall_s"]
    from widgets.session import stop_own_services
    stop_own_services()
    print(f"\napp overhead ({w}x{d}, ctx {t}, batch {b}, {steps} steps, {args.rounds} rounds): "
          f"through the app {out['app_tokens_per_s']:,.0f} tok/s vs headless {out['headless_tokens_per_s']:,.0f} "
          f"({out['throughput_ratio']:.2f}x); whole run {out['app_wall_s']:.2f} s vs {out['headless_wall_s']:.2f} s "
          f"({out['wall_ratio']:.2f}x, store writes and redraws included)")
    return out


if __name__ == "__main__":
    main()
