"""Shared by the store, sweep and Ray tests: the tiny config, its command-line twin, subprocess helpers."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from lab.config import ModelConfig, RunConfig

ROOT = Path(__file__).resolve().parents[1]

# The real default config shrunk until one run is a fraction of a second once compiled.
TINY = RunConfig(model=ModelConfig(width=16, depth=1, heads=2, context=16), tokens=4096, batch=8, evals=2)
# The same config on the command line (`scaling-lab sweep` builds an identical RunConfig).
TINY_ARGS = ["--heads", "2", "--context", "16", "--batch", "8", "--evals", "2", "--widths", "16", "--depths", "1"]


def lab_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("SCALING_LAB_STORE", None)
    return env


def lab_process(*args, **kw) -> subprocess.Popen:
    """`python -m lab ARGS` as a child process (stdout and stderr piped)."""
    return subprocess.Popen([sys.executable, "-m", "lab", *map(str, args)], cwd=ROOT, env=lab_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def python_process(code: str) -> subprocess.Popen:
    """`python -c CODE` with the project importable (stdin, stdout piped)."""
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=lab_env(), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def statuses(store_dir) -> dict[str, str]:
    """run_id -> status straight from the database (read-only, as an outside observer would)."""
    db = Path(store_dir) / "runs.sqlite"
    if not db.exists():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return dict(con.execute("SELECT run_id, status FROM runs").fetchall())
    except sqlite3.OperationalError:   # the schema is not created yet
        return {}
    finally:
        con.close()
