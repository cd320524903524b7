"""Process-wide settings applied at the edges (command line, app, benchmarks), never on import.

- Device memory: JAX normally grabs 75 % of a GPU per process; with many notebook kernels on
  one GPU (a classroom) each kernel must allocate only what it uses.
- Compilation cache: compiled programs are kept on disk, so a restarted kernel or a second
  command-line run of the same shape skips most of XLA's compile time. The minimum compile
  time is set to 0 so that small programs (evaluation, a chunk of a tiny model) are cached too.
- Host memory (Linux): XLA allocates each compiled call's temporaries afresh and glibc hands
  large blocks back to the kernel when they are freed, so every call page-faults its whole
  working set again (about 180,000 faults, 0.2 s, per call at width 256). With jemalloc told
  to keep freed pages (`dirty_decay_ms:-1`), a training step at width 256 took 0.82 s instead
  of 1.08 s. `fast_allocator_env()` says how to start a process that way; the command line
  and the app restart themselves under it when Debian's libjemalloc2 is installed.
  The price: a process keeps its peak host memory until it ends. `SCALING_LAB_JEMALLOC=0`
  turns it off (a server with many idle kernels and little memory).
"""

import ctypes.util
import os
import sys
from pathlib import Path

JEMALLOC_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1"
JEMALLOC_PATHS = ("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
                  "/usr/lib64/libjemalloc.so.2", "/usr/local/lib/libjemalloc.so.2")


def jemalloc_path() -> str | None:
    if not sys.platform.startswith("linux") or os.environ.get("SCALING_LAB_JEMALLOC", "1") == "0":
        return None
    for path in JEMALLOC_PATHS:
        if os.path.exists(path):
            return path
    found = ctypes.util.find_library("jemalloc")
    return found if found and os.path.isabs(found) else None


def fast_allocator_env(env: dict | None = None) -> dict:
    """`env` (default: this process's) with jemalloc preloaded, when it is installed."""
    env = dict(os.environ if env is None else env)
    lib = jemalloc_path()
    if lib and lib not in env.get("LD_PRELOAD", ""):
        env["LD_PRELOAD"] = ":".join(p for p in (lib, env.get("LD_PRELOAD", "")) if p)
        env.setdefault("MALLOC_CONF", JEMALLOC_CONF)
    return env


def reexec_with_fast_allocator(argv: list[str]) -> None:
    """Replace this process by `python ARGV` under jemalloc, once, if that is possible and not done.
    Call only from a program's entry point, before anything has started."""
    env = fast_allocator_env()
    if env.get("LD_PRELOAD") != os.environ.get("LD_PRELOAD") and not os.environ.get("SCALING_LAB_REEXEC"):
        env["SCALING_LAB_REEXEC"] = "1"
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, *argv], env)


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
