"""How long runs will take, and what the device that trains them can hold: from past runs of
the same shape on that device, else a measured matmul rate. Pure given a `Speed`, so a page that
never imports JAX estimates from the facts the training service reports (`lab.service`)."""

import functools
import math
import os
import statistics
import time
from dataclasses import dataclass

from lab.config import ConfigError, RunConfig
from lab.counting import flops_per_token, memory_bytes, run_flops
from lab.i18n import N_, _
from lab.schema import Name, Say

EFFICIENCY = 0.5        # small models train at about half of a 256x256 matmul's FLOP/s (measured on CPU)
COMPILE_S = {"cpu": 10.0, "gpu": 30.0, "tpu": 30.0}  # first compile of a new shape, when no past run says
GUESS_FLOPS = 1e10      # effective FLOP/s assumed before any device was measured (a 2-core laptop's order)


@dataclass(frozen=True)
class Speed:
    """What is known of the device that trains: its name (as runs record it), platform,
    effective training FLOP/s (a timed matmul chain times EFFICIENCY), memory a process may use,
    and cores. `measured` is False for the guess used before any service reported its device."""
    device: str
    platform: str
    flops_per_s: float
    memory_bytes: int
    cores: int = 1
    measured: bool = True

    def to_dict(self) -> dict:
        return {"device": self.device, "platform": self.platform, "flops_per_s": self.flops_per_s,
                "memory_bytes": self.memory_bytes, "cores": self.cores, "measured": self.measured}

    @classmethod
    def from_dict(cls, d: dict) -> "Speed":
        return cls(**{k: d[k] for k in ("device", "platform", "flops_per_s", "memory_bytes", "cores", "measured")
                      if k in d})


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def guess() -> Speed:
    """A stand-in before the training service has measured its device (estimates say so)."""
    return Speed(device="unknown", platform="cpu", flops_per_s=GUESS_FLOPS,
                 memory_bytes=os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), cores=cores(), measured=False)


@functools.cache
def local_speed() -> Speed:
    """This process's device, measured (imports JAX): a timed 256x256 matmul chain."""
    import jax
    import jax.numpy as jnp

    from lab.device import device_name, memory_limit, platform
    n, reps = 256, 20
    a = jnp.full((n, n), 1.0 / n, jnp.float32)
    f = jax.jit(lambda a: jax.lax.fori_loop(0, reps, lambda i, x: x @ a, a))
    f(a).block_until_ready()
    best = math.inf
    for _x in range(3):
        t = time.perf_counter()
        f(a).block_until_ready()
        best = min(best, time.perf_counter() - t)
    return Speed(device=device_name(), platform=platform(), flops_per_s=2 * n ** 3 * reps / best * EFFICIENCY,
                 memory_bytes=memory_limit(), cores=cores())


def check_memory(cfg: RunConfig, seeds: int, speed: Speed) -> None:
    """Refuse, before anything is allocated, a run whose estimate exceeds 90 % of the device's memory."""
    need, limit = memory_bytes(cfg, seeds), speed.memory_bytes
    if need > 0.9 * limit:
        raise ConfigError(Say(N_("this run needs about {need} GiB of device memory (estimate: weights, optimizer "
                                 "state and activations for {seeds} seed(s)) but {device} has {limit} GiB; lower "
                                 "{batch}, {context}, {width} or {depth}, or train fewer seeds at once"),
                              need=f"{need / 2**30:.1f}", seeds=seeds, device=speed.device, limit=f"{limit / 2**30:.1f}",
                              batch=Name("batch"), context=Name("model.context"), width=Name("model.width"),
                              depth=Name("model.depth")))


@dataclass(frozen=True)
class Estimate:
    """How long the runs a store does not hold yet should take on the device."""
    seconds: float
    runs: int                # runs still to train
    done: int                # runs already finished in the store
    flops: float             # training FLOPs of the runs still to train
    source: str              # where the speeds came from


@dataclass(frozen=True)
class PastSpeeds:
    """The speeds of past finished runs on one device: tokens/s per shape, FLOP/s and compile time."""
    shape_tps: dict
    flops_per_s: float | None
    compile_s: float | None
    runs: int


def past_speeds(records, device: str) -> PastSpeeds:
    """From store records (`RunStore.records()`): medians of the done runs on `device`."""
    by_shape: dict[str, list] = {}
    fps, first = [], []
    n = 0
    for rec in records:
        r = rec.result
        if rec.status != "done" or r is None or r.device != device or not (r.tokens_per_s or 0) > 0:
            continue
        n += 1
        by_shape.setdefault(rec.config.shape_id, []).append(r.tokens_per_s)
        fps.append(r.tokens_per_s * flops_per_token(rec.config.model))
        if math.isfinite(r.first_step_s):
            first.append(r.first_step_s)
    return PastSpeeds(shape_tps={k: statistics.median(v) for k, v in by_shape.items()},
                      flops_per_s=statistics.median(fps) if fps else None,
                      compile_s=statistics.median(first) if first else None, runs=n)


def run_seconds(cfg: RunConfig, past: PastSpeeds, speed: Speed) -> float:
    """One run's training time: its shape's past speed, else the device's FLOP/s (no compile)."""
    tps = past.shape_tps.get(cfg.shape_id)
    return cfg.tokens_trained / tps if tps else run_flops(cfg) / (past.flops_per_s or speed.flops_per_s)


def estimate(configs, records, speed: Speed, *, finished_ids=None) -> Estimate:
    """Per shape: the median tokens/s of past runs of that shape on the device; for new shapes:
    the median FLOP/s of past runs there, else the device's measured rate; plus a compile per new
    shape (past runs' median first-step time, else COMPILE_S).

    Args:
        configs: the runs.
        records: the store's records (`RunStore.records()`): past speeds and what is finished.
        speed: the device that will train them (`local_speed()`, or the service's `Speed`).
    """
    records = list(records)
    done_ids = set(finished_ids) if finished_ids is not None else {r.run_id for r in records
                                                                   if r.status in ("done", "diverged")}
    configs = list(configs)
    todo = [c for c in configs if c.run_id not in done_ids]
    past = past_speeds(records, speed.device)
    if past.runs:            # in the current language (the page's, or English on the command line)
        source = _("from {n} past runs on {device}").format(n=past.runs, device=speed.device)
    elif speed.measured:
        source = _("from a matmul probe on {device}, {flops} FLOP/s effective; a rough guess").format(
            device=speed.device, flops=f"{speed.flops_per_s:.2g}")
    else:
        source = _("a guess: the training service has not measured its device yet")
    compile_s = past.compile_s if past.compile_s is not None else COMPILE_S.get(speed.platform, 10.0)
    seconds = sum(run_seconds(c, past, speed) for c in todo)
    seconds += compile_s * len({c.shape_id for c in todo if c.shape_id not in past.shape_tps})
    return Estimate(seconds=seconds, runs=len(todo), done=len(configs) - len(todo),
                    flops=float(sum(run_flops(c) for c in todo)), source=source)


def format_seconds(s: float) -> str:
    """'45 s', '2.5 min', '1.3 h', in the current language (the unit symbol s is the same in all)."""
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return _("{n} min").format(n=f"{s / 60:.1f}")
    return _("{n} h").format(n=f"{s / 3600:.1f}")
