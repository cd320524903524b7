"""Benchmarks (`python -m bench`, `make bench`), the accelerator check and the learning-rate transfer."""

import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def save_report(report: dict, name: str, path: str | None = None, indent: int = 2) -> Path:
    """Write a benchmark's JSON to `path`, default bench/results/<name>-<time>.json; returns the path."""
    out = Path(path) if path else ROOT / "bench" / "results" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=indent))
    return out


def family_results(store, seeds: str | None = None) -> list:
    """The finished (done) RunResults of the store's largest family, only `seeds` ("0,1") when given;
    exits with a message when the store holds none. `store`: a RunStore."""
    from lab.family import family_key
    results = [r.result for r in store.records() if r.result is not None and r.status == "done"]
    if not results:
        raise SystemExit(f"{store.path} holds no finished runs; train the ladder first (make ladder)")
    keys = [family_key(r.config) for r in results]
    family = max(set(keys), key=keys.count)
    results = [r for r, k in zip(results, keys) if k == family]
    if seeds is not None:
        results = [r for r in results if r.config.seed in {int(k) for k in seeds.split(",")}]
    return results
