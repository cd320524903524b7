"""Process-wide settings applied at the edges (command line, app, benchmarks), never on import.

- Device memory: JAX normally grabs 75 % of a GPU per process; with many notebook kernels on
  one GPU (a classroom) each kernel must allocate only what it uses.
- Compilation cache: compiled programs are kept on disk, so a restarted kernel or a second
  command-line run of the same shape skips most of XLA's compile time. The minimum compile
  time is set to 0 so that small programs (evaluation, a chunk of a tiny model) are cached too.
"""

import os
from pathlib import Path


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(os.environ.get("SCALING_LAB_JAX_CACHE", os.path.join(base, "scaling-lab", "jax")))


def setup(*, compilation_cache: bool = True) -> None:
    """Apply the settings; call before the first computation. Idempotent."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import jax
    if compilation_cache and os.environ.get("SCALING_LAB_JAX_CACHE", "1") != "0":
        path = cache_dir()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:
            return  # a read-only home: run without the cache rather than fail
        jax.config.update("jax_compilation_cache_dir", str(path))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
