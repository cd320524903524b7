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
