"""This process's accelerator as JAX sees it: its platform, its name and the memory a run may use.

Apart from `lab.training` so that `lab.estimate` (pure, read by pages that never import JAX)
can measure the device in a worker without importing the training loop.
"""

import os

import jax


def platform() -> str:
    return jax.devices()[0].platform


def device_name() -> str:
    d = jax.devices()[0]
    return f"{d.platform}:{getattr(d, 'device_kind', d.platform)}"


def memory_limit() -> int:
    """Bytes this process may use on its device: the accelerator's limit, or physical RAM on CPU."""
    d = jax.devices()[0]
    stats = d.memory_stats() if d.platform != "cpu" else None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"])
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
