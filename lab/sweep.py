"""Sweep plans (grids, IsoFLOP budgets) and executors (in-process; Ray for clusters).

One module, over the usual size, because a plan and the code that executes it share one
contract: the store decides what still needs training (claims), executors only place work.

- Plans are pure and frozen: `grid` (width x depth x tokens x optimizer x lr x seed) and
  `isoflop` (for each compute budget C and model size, D = C / flops_per_token, rounded to
  whole steps). `Plan.summary()` states runs, FLOPs and an estimated time.
- `run_sweep(plan, store)` trains what the store does not hold yet. Runs already done (or
  diverged) are reused, interrupted, failed and cancelled ones are trained again, runs another
  process is training are waited for. Same-shape runs that differ only in their seed train
  together through `vmap` (`train_seeds`): one compiled program, one dispatch per chunk.
- Executors: `LocalExecutor` trains in this process (trackers see every event);
  `RayExecutor` sends each group of seeds to a Ray task asking for one GPU (or one CPU on a
  CPU-only cluster). The tasks return results and weights as bytes and the driver commits
  them: SQLite must not be written over a network file system, and remote workers may not
  see the driver's disk at all, so the driver is the store's single writer. The driver holds
  the claims, so a killed driver's runs are found interrupted and retrained on resume.
"""

import functools
import itertools
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from lab.config import ConfigError, RunConfig
from lab.counting import flops_per_token, param_counts, run_flops
from lab.store import (FINISHED, RunRecord, RunStore, StoreTracker, cancel_requested, result_from_dict,
                       weights_bytes)
from lab.trackers import Tracker

EFFICIENCY = 0.5        # small models train at about half of a 256x256 matmul's FLOP/s (measured on CPU)
COMPILE_S = {"cpu": 10.0, "gpu": 30.0, "tpu": 30.0}  # first compile of a new shape, when no past run says
CHINCHILLA_TOKENS_PER_PARAM = 20   # D ≈ 20 N at the compute optimum (Hoffmann et al. 2022)


# --- plans -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    """The runs of a sweep, in training order (same-shape runs adjacent, seeds innermost)."""
    configs: tuple[RunConfig, ...]
    budgets: tuple[float | None, ...] = ()   # IsoFLOP budget C of each run (None in grids)
    refused: tuple[str, ...] = ()            # points left out, each with its reason
    description: str = ""

    def __post_init__(self):
        if not self.budgets:
            object.__setattr__(self, "budgets", (None,) * len(self.configs))
        if len(self.budgets) != len(self.configs):
            raise ValueError(f"a plan needs one budget per config, got {len(self.budgets)} for {len(self.configs)}")
        ids = [c.run_id for c in self.configs]
        if len(set(ids)) != len(ids):
            raise ConfigError("a plan lists the same run twice; remove the duplicate values")

    def __len__(self) -> int:
        return len(self.configs)

    def __iter__(self):
        return iter(self.configs)

    @property
    def run_ids(self) -> tuple[str, ...]:
        return tuple(c.run_id for c in self.configs)

    @property
    def total_flops(self) -> float:
        return float(sum(run_flops(c) for c in self.configs))

    @property
    def shapes(self) -> int:
        """Distinct compiled programs the plan needs."""
        return len({c.shape_id for c in self.configs})

    def groups(self, max_seeds: int = 16) -> list[list[int]]:
        """Indices of runs that differ only by seed (trained together), at most `max_seeds` each."""
        by_key: dict[str, list[int]] = {}
        for i, c in enumerate(self.configs):
            by_key.setdefault(c.replace(seed=0).run_id, []).append(i)
        return [g[k:k + max_seeds] for g in by_key.values() for k in range(0, len(g), max(1, max_seeds))]

    def estimate(self, store: RunStore | None = None) -> "Estimate":
        """Time to train the runs the store does not hold yet (see `Estimate`)."""
        return estimate(self, store)

    def summary(self, store: RunStore | None = None) -> str:
        """Runs, FLOPs and estimated time, in a few lines for people."""
        est = self.estimate(store)
        lines = [f"{self.description or 'sweep'}: {len(self)} runs over {self.shapes} shapes, "
                 f"{self.total_flops:.3g} training FLOPs"]
        if est.done:
            lines.append(f"  {est.done} already finished in the store, {est.runs} to train ({est.flops:.3g} FLOPs)")
        lines.append(f"  estimated time {format_seconds(est.seconds)} ({est.source})")
        budgets = sorted({b for b in self.budgets if b is not None})
        for b in budgets:
            sizes = [c for c, cb in zip(self.configs, self.budgets) if cb == b]
            lines.append(f"  budget C={b:.3g}: " + ", ".join(
                f"N={param_counts(c.model).total:,}/D={c.tokens_trained:,}" for c in sizes
                if c.seed == sizes[0].seed))
        if any(c.tokens_per_param for c in self.configs):
            sizes = {}
            for c in self.configs:
                sizes.setdefault((c.model.width, c.model.depth), c)
            lines.append("  sizes: " + ", ".join(f"{w}x{d} N={param_counts(c.model).total:,} D={c.tokens_trained:,}"
                                                  for (w, d), c in sizes.items()))
        for reason in self.refused:
            lines.append(f"  left out: {reason}")
        return "\n".join(lines)


def _values(name: str, values, default) -> list:
    if values is None:
        return [default]
    values = list(dict.fromkeys(values))   # drop repeats, keep order
    if not values:
        raise ConfigError(f"{name} is empty; give at least one value or leave it out")
    return values


def grid(base: RunConfig, *, widths: Sequence[int] | None = None, depths: Sequence[int] | None = None,
         tokens: Sequence[int] | None = None, optimizers: Sequence[str] | None = None,
         lrs: Sequence[float] | None = None, seeds: Sequence[int] | None = None) -> Plan:
    """Every combination of the given values; a value left out keeps `base`'s.

    Raises:
        ConfigError: an empty list, or a combination that is not a valid config (the message
            names the point and the fix).
    """
    ws, ds = _values("widths", widths, base.model.width), _values("depths", depths, base.model.depth)
    ts = [int(t) for t in _values("tokens", tokens, base.tokens)]
    os_, ls = _values("optimizers", optimizers, base.optim.name), _values("lrs", lrs, base.optim.lr)
    ss = _values("seeds", seeds, base.seed)
    configs = []
    for w, d, o, lr, t, s in itertools.product(ws, ds, os_, ls, ts, ss):
        try:
            configs.append(base.replace(model__width=w, model__depth=d, optim__name=o, optim__lr=lr, tokens=t, seed=s))
        except ConfigError as e:
            raise ConfigError(f"grid point width={w}, depth={d}, optimizer={o}, lr={lr:g}, tokens={t:g}: {e}") from None
    parts = [f"{k} {','.join(f'{v:g}' if isinstance(v, float) else str(v) for v in vs)}"
             for k, vs in (("widths", ws), ("depths", ds), ("optimizers", os_), ("lrs", ls), ("tokens", ts),
                           ("seeds", ss))]
    return Plan(configs=tuple(configs), description="grid: " + " x ".join(parts))


# The default ladder (README, "Scaling laws that predict"), chosen by measurement on this
# 2-core CPU: eight Transformer sizes spanning 8.4x in parameters (63k to 526k), each trained
# on 20 tokens per parameter, in about 14 minutes. Its six smaller sizes span 4.5x: fitted on
# them, the law predicted widths 112, 136 and 160 within 0.8 % (pre-registered,
# bench/ladder-preregistration.md); fitted on five sizes spanning 3.2x it missed width 136 by
# 5 %, too short a span to pin E and α. Width 32 sat off the law of the larger sizes, so the
# ladder starts at 40. μP with the learning rate tuned at width 32 holds the rate right at
# every width (a standard-parameterisation ladder at the same rate missed by 6 %).
LADDER_WIDTHS = (40, 48, 56, 64, 80, 96, 112, 136)
LADDER_PARAM = "mup"
LADDER_LR = 3e-3
LADDER_EVAL_TOKENS = 65_536   # a held-out sample 4x the default: the laws compare losses to under 1 %


def ladder_base(base: RunConfig) -> RunConfig:
    """`base` with the ladder's tuned settings (μP, `LADDER_LR`, `LADDER_EVAL_TOKENS`) where they
    apply: μP only for the Transformer with an Adam-type optimizer (`lab.config.MUP_OPTIMIZERS`)."""
    from lab.config import MUP_OPTIMIZERS
    out = base.replace(optim__lr=LADDER_LR, eval_tokens=max(base.eval_tokens, LADDER_EVAL_TOKENS))
    if base.model.arch == "gpt" and base.optim.name in MUP_OPTIMIZERS:
        out = out.replace(model__param=LADDER_PARAM)
    return out


def ladder(base: RunConfig, *, widths: Sequence[int] | None = None, depths: Sequence[int] | None = None,
           tokens_per_param: float = CHINCHILLA_TOKENS_PER_PARAM, optimizers: Sequence[str] | None = None,
           lrs: Sequence[float] | None = None, seeds: Sequence[int] | None = None) -> Plan:
    """A scaling ladder: models of several sizes, each trained on D = R x N tokens, with
    N = params_total (Hoffmann et al. 2022 count all parameters in their 20 tokens per
    parameter) and R = `tokens_per_param`. Every run is of one family, so a law fitted to
    the smaller rungs can be checked on the larger ones.

    Args:
        base: everything but width, depth and tokens (its depth is used when `depths` is None).
        widths: model widths (default `LADDER_WIDTHS`); combined with every depth as in `grid`.
        tokens_per_param: R (> 0).
        optimizers, lrs, seeds: as in `grid`.
    """
    if not (isinstance(tokens_per_param, (int, float)) and math.isfinite(tokens_per_param) and tokens_per_param > 0):
        raise ConfigError(f"tokens per parameter must be a positive number, got {tokens_per_param!r}; "
                          "Chinchilla's compute-optimal ratio is 20")
    base = base.replace(tokens_per_param=float(tokens_per_param))
    plan = grid(base, widths=widths or LADDER_WIDTHS, depths=depths, optimizers=optimizers, lrs=lrs, seeds=seeds)
    return Plan(configs=plan.configs, description=plan.description.replace("grid:", "ladder:", 1).replace(
        f" x tokens {base.tokens}", "") + f", D = {tokens_per_param:g} x N (N = all parameters), "
        + ("μP" if base.model.param == "mup" else "standard parameterisation"))


def aspect_depth(ratio: float) -> Callable[[int], int]:
    """A depth rule: depth = max(1, round(width / ratio)) (Kaplan et al. 2020 find loss flat over
    width/depth ratios of about 20 to 200)."""
    if not ratio > 0:
        raise ConfigError(f"the width/depth ratio must be positive, got {ratio}")
    return lambda width: max(1, round(width / ratio))


def _candidate_widths(base: RunConfig) -> list[int]:
    """Widths an IsoFLOP plan may pick: multiples of the heads (times 2 for rotary's even head
    size) for the Transformer, multiples of 8 for the LSTM, up to 4096."""
    m = base.model
    step = (m.heads * (2 if m.positions == "rotary" else 1)) if m.arch == "gpt" else 8
    return list(range(step, 4096 + 1, step))


def isoflop(base: RunConfig, budgets: Sequence[float], *, widths: Sequence[int] | None = None,
            n_sizes: int | None = None, depth: int | Callable[[int], int] | None = None,
            span: float = 4.0, seeds: Sequence[int] | None = None) -> Plan:
    """IsoFLOP profiles (Hoffmann et al. 2022, approach 2): for each budget C, models of several
    sizes, each trained on D = C / flops_per_token tokens (the store's own FLOP count, so the
    run's recorded `flops` is C up to half a batch; flops_per_token ≈ 6N for large models).

    Args:
        base: everything but width, depth and tokens.
        budgets: compute budgets C in FLOPs.
        widths: the model widths to try at every budget; or
        n_sizes: pick this many widths per budget, their N spread evenly in log between
            N_opt / span and N_opt * span around the Chinchilla guess N_opt = sqrt(C / 120)
            (from C = 6ND and D = 20N).
        depth: a fixed depth, or a rule width -> depth (see `aspect_depth`); default base's depth.
        seeds: seeds per point (default base's seed).

    Returns:
        A plan whose `refused` names the points left out: a size whose D is less than one batch.
    """
    budgets = [float(c) for c in _values("budgets", budgets, None)]
    for c in budgets:
        if not (math.isfinite(c) and c > 0):
            raise ConfigError(f"compute budgets must be positive FLOP counts, got {c}")
    if (widths is None) == (n_sizes is None):
        raise ConfigError("an IsoFLOP plan needs either widths=[...] or n_sizes=N (not both); "
                          "e.g. --isoflop-widths 32,64,128")
    if n_sizes is not None and (isinstance(n_sizes, bool) or not isinstance(n_sizes, int) or n_sizes < 1):
        raise ConfigError(f"n_sizes must be a positive whole number, got {n_sizes!r}")
    rule = depth if callable(depth) else (lambda w, d=depth or base.model.depth: d)
    ss = _values("seeds", seeds, base.seed)
    per_step = base.tokens_per_step
    configs, plan_budgets, refused = [], [], []
    seen: dict[str, float] = {}
    for c in budgets:
        if widths is not None:
            ws = list(dict.fromkeys(widths))
        else:
            cands = _candidate_widths(base)
            logn = np.log([param_counts(base.replace(model__width=w, model__depth=rule(w)).model).total
                           for w in cands])
            n_opt = math.sqrt(c / (6 * CHINCHILLA_TOKENS_PER_PARAM))
            targets = np.geomspace(n_opt / span, n_opt * span, n_sizes) if n_sizes > 1 else [n_opt]
            ws = list(dict.fromkeys(cands[int(np.argmin(np.abs(logn - math.log(t))))] for t in targets))
        for w in ws:
            try:
                model_cfg = base.replace(model__width=w, model__depth=rule(w)).model
            except ConfigError as e:
                raise ConfigError(f"IsoFLOP width {w}: {e}") from None
            fpt = flops_per_token(model_cfg)
            d_tokens = c / fpt
            if d_tokens < per_step:
                refused.append(f"C={c:.3g}, width {w}: D = C / flops_per_token = {d_tokens:,.0f} tokens is less than "
                               f"one batch ({per_step:,} tokens); raise the budget or drop this size")
                continue
            tokens = round(d_tokens / per_step) * per_step
            for s in ss:
                cfg = base.replace(model__width=w, model__depth=model_cfg.depth, tokens=tokens, seed=s)
                if cfg.run_id in seen:
                    refused.append(f"C={c:.3g}, width {w}: the same run as at budget {seen[cfg.run_id]:.3g} "
                                   "(the budgets are closer than one batch)")
                    continue
                seen[cfg.run_id] = c
                configs.append(cfg)
                plan_budgets.append(c)
    if not configs:
        raise ConfigError("no IsoFLOP point has at least one batch of tokens: " + "; ".join(refused[:3]))
    desc = (f"IsoFLOP: budgets {','.join(f'{c:.3g}' for c in budgets)} x "
            + (f"widths {','.join(map(str, widths))}" if widths is not None else f"{n_sizes} sizes per budget"))
    return Plan(configs=tuple(configs), budgets=tuple(plan_budgets), refused=tuple(refused), description=desc)


# --- time estimates ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Estimate:
    """How long the runs a store does not hold yet should take on this machine."""
    seconds: float
    runs: int                # runs still to train
    done: int                # runs already finished in the store
    flops: float             # training FLOPs of the runs still to train
    source: str              # where the speeds came from


@functools.cache
def probe_flops_per_s() -> float:
    """Effective training FLOP/s of this machine: a timed 256x256 matmul chain times EFFICIENCY."""
    import jax
    import jax.numpy as jnp
    n, reps = 256, 20
    a = jnp.full((n, n), 1.0 / n, jnp.float32)
    f = jax.jit(lambda a: jax.lax.fori_loop(0, reps, lambda i, x: x @ a, a))
    f(a).block_until_ready()
    best = math.inf
    for _ in range(3):
        t = time.perf_counter()
        f(a).block_until_ready()
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 * reps / best * EFFICIENCY


def estimate(plan: Plan, store: RunStore | None = None) -> Estimate:
    """Per shape: the median tokens/s of the store's past runs of that shape on this device;
    for new shapes: the median FLOP/s of past runs here, else a matmul probe; plus a compile
    per new shape (past runs' median first-step time, else COMPILE_S)."""
    from lab.training import device_name, platform
    device = device_name()
    past = store.finished_table() if store is not None else None
    done_ids: set[str] = set()
    if past is not None and len(past):
        done_ids = set(past["run_id"])
        past = past[(past["device"] == device) & (past["status"] == "done") & (past["tokens_per_s"] > 0)]
    todo = [c for c in plan.configs if c.run_id not in done_ids]
    shape_tps: dict[str, float] = {}
    if past is not None and len(past):
        shape_tps = past.groupby("shape_id")["tokens_per_s"].median().to_dict()
        fps = float((past["tokens_per_s"] * past["flops_per_token"]).median())
        compile_s = float(past["first_step_s"].median())
        source = f"from {len(past)} past runs on {device}"
    else:
        fps = probe_flops_per_s()
        compile_s = COMPILE_S.get(platform(), 10.0)
        source = f"from a matmul probe on {device}, {fps:.2g} FLOP/s effective; a rough guess"
    seconds = 0.0
    for c in todo:
        tps = shape_tps.get(c.shape_id)
        seconds += c.tokens_trained / tps if tps else run_flops(c) / fps
    seconds += compile_s * len({c.shape_id for c in todo if c.shape_id not in shape_tps})
    return Estimate(seconds=seconds, runs=len(todo), done=len(plan) - len(todo),
                    flops=float(sum(run_flops(c) for c in todo)), source=source)


def format_seconds(s: float) -> str:
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


# --- progress --------------------------------------------------------------------------------

class SweepTracker(Tracker):
    """Listens to a sweep: the `Tracker` methods for every run trained in this process (not
    inside Ray tasks), plus the sweep's own steps below. Override what you need."""

    def sweep_start(self, plan: Plan, todo: int) -> None:
        """Before the first run; `todo` runs are not finished in the store."""

    def run_end(self, record: RunRecord, ended: int, total: int) -> None:
        """Each planned run once, when it ends here or is found finished: run `ended` of `total`."""

    def sweep_end(self, report: "SweepReport") -> None:
        """After the last run (also after a cancel)."""


class SweepBar(SweepTracker):
    """A tqdm bar over the sweep's runs on stderr, with the current run's step and loss."""

    def __init__(self, file=None):
        self.file = file or sys.stderr
        self.bar = None
        self.counts: dict[str, int] = {}

    def sweep_start(self, plan, todo):
        from tqdm import tqdm
        self.bar = tqdm(total=len(plan), unit="run", desc="sweep", file=self.file, dynamic_ncols=True)

    def log(self, event):
        if self.bar is not None:
            self.bar.set_postfix({"run": event.run_id[:8], "step": f"{event.step}/{event.steps}",
                                  "loss": f"{event.train_loss:.3f}", **self.counts}, refresh=False)
            self.bar.refresh()

    def run_end(self, record, ended, total):
        self.counts[record.status] = self.counts.get(record.status, 0) + 1
        if self.bar is not None:
            self.bar.set_postfix(self.counts, refresh=False)
            self.bar.update(1)

    def sweep_end(self, report):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@dataclass(frozen=True)
class SweepReport:
    """What a sweep did. `records` are the planned runs that ended (all of them unless cancelled)."""
    records: tuple[RunRecord, ...]   # plan order
    trained: tuple[str, ...]         # run ids trained by this call
    reused: tuple[str, ...]          # found finished in the store
    missing: tuple[str, ...]         # planned but not reached (cancelled sweep)
    cancelled: bool

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.records:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    @property
    def ok(self) -> bool:
        """Every planned run finished (done or diverged)."""
        return not self.missing and all(r.status in FINISHED for r in self.records)

    def summary(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items()))
        out = f"{len(self.records)} runs: {counts or 'none'}; trained {len(self.trained)}, reused {len(self.reused)}"
        if self.missing:
            out += f", {len(self.missing)} not reached (cancelled)"
        for r in self.records:
            if r.status not in FINISHED and r.error:
                out += f"\n  {r.run_id} {r.status}: {r.error.splitlines()[0][:300]}"
        return out


# --- the driver (shared by the executors) ------------------------------------------------------

class Sweep:
    """One sweep in progress: claims runs from the store, records their ends, tells trackers.
    Executors ask it for groups of claimed runs (`claimed_groups`) and report back."""

    POLL_S = 0.5

    def __init__(self, plan: Plan, store: RunStore, *, trackers: Iterable[Tracker] = (), cancel=None,
                 max_seeds: int = 16):
        self.plan, self.store, self.cancel = plan, store, cancel
        self.trackers = list(trackers)
        self.max_seeds = max_seeds
        self.ended: dict[int, RunRecord] = {}
        self.trained: list[str] = []
        self.reused: list[str] = []
        self.deferred: list[int] = []

    def _sweep_trackers(self, method: str, *args) -> None:
        for t in self.trackers:
            fn = getattr(t, method, None)
            if fn is not None:
                fn(*args)

    @property
    def cancelled(self) -> bool:
        return cancel_requested(self.cancel)

    def end(self, i: int, record: RunRecord | None = None) -> None:
        record = record or self.store.record(self.plan.configs[i].run_id)
        self.ended[i] = record
        self._sweep_trackers("run_end", record, len(self.ended), len(self.plan))

    def _claim(self, indices: Sequence[int]) -> list[int]:
        claimed = []
        for i in indices:
            cfg = self.plan.configs[i]
            claim = self.store.claim(cfg, budget=self.plan.budgets[i])
            if claim.status == "claimed":
                claimed.append(i)
            elif claim.status == "finished":
                self.reused.append(cfg.run_id)
                self.end(i, claim.record)
            else:
                self.deferred.append(i)
        return claimed

    def claimed_groups(self):
        """Groups of runs claimed for this process, in plan order; then the runs that other
        processes were training, once they can be claimed (waiting for them meanwhile)."""
        for group in self.plan.groups(self.max_seeds):
            if self.cancelled:
                return
            claimed = self._claim(group)
            if claimed:
                yield claimed
        while self.deferred and not self.cancelled:
            waiting, self.deferred = self.deferred, []
            for i in waiting:
                rec = self.store.record(self.plan.configs[i].run_id)
                if rec is not None and rec.status == "running":
                    self.deferred.append(i)
                elif rec is not None and rec.status in FINISHED:
                    self.reused.append(rec.run_id)
                    self.end(i, rec)
                else:
                    claimed = self._claim([i])
                    if claimed:
                        yield claimed
            if self.deferred:
                time.sleep(self.POLL_S)

    def trained_ok(self, indices: Sequence[int]) -> None:
        for i in indices:
            self.trained.append(self.plan.configs[i].run_id)
            self.end(i)

    def failed(self, indices: Sequence[int], error: BaseException) -> None:
        """An exception while training: record `failed` with the message; the sweep goes on."""
        msg = f"{type(error).__name__}: {error}"
        self.store.release([self.plan.configs[i].run_id for i in indices], status="failed", error=msg)
        for i in indices:
            self.end(i)

    def interrupted(self, indices: Sequence[int], why: str) -> None:
        self.store.release([self.plan.configs[i].run_id for i in indices], status="interrupted", error=why)

    def report(self) -> "SweepReport":
        order = sorted(self.ended)
        return SweepReport(records=tuple(self.ended[i] for i in order), trained=tuple(self.trained),
                           reused=tuple(self.reused),
                           missing=tuple(c.run_id for i, c in enumerate(self.plan.configs) if i not in self.ended),
                           cancelled=self.cancelled)


class LocalExecutor:
    """Trains in this process, one group of seeds at a time through `train_seeds`.

    Args:
        max_seeds: most seeds trained together in one vmapped program (1: one run at a time).
    """

    def __init__(self, *, max_seeds: int = 16):
        self.max_seeds = max_seeds

    def run(self, sweep: Sweep) -> None:
        from lab.training import train_seeds
        for group in sweep.claimed_groups():
            configs = [sweep.plan.configs[i] for i in group]
            tracker = StoreTracker(sweep.store, budget=sweep.plan.budgets[group[0]])
            try:
                train_seeds(configs[0], [c.seed for c in configs], trackers=[tracker, *sweep.trackers],
                            cancel=sweep.cancel)
            except Exception as e:       # one run's error is that run's result; the sweep goes on
                sweep.failed(group, e)
                continue
            except BaseException:        # Ctrl-C, SystemExit: give the claims back, then stop
                sweep.interrupted(group, "the sweep was interrupted")
                raise
            sweep.trained_ok(group)


def _train_task(config: dict, seeds: list[int]) -> list[tuple[dict, bytes]]:
    """A Ray task: train a group of seeds; return each result (curve included) and its weights."""
    from lab import runtime
    runtime.setup()
    from lab.training import train_seeds
    cfg = RunConfig.from_dict(config)
    return [(r.to_dict(curve=True), weights_bytes(r.config, r.model)) for r in train_seeds(cfg, seeds)]


class RayExecutor:
    """Sends each group of seeds to a Ray task; the driver (this process) writes the store.

    Args:
        address: an existing cluster (`ray://...` or `host:port`); None starts a local Ray,
            unless Ray is already initialised in this process (then that one is used).
        num_cpus: CPUs of a local Ray (default: all).
        max_seeds: most seeds per task (trained together through vmap).
        in_flight: most tasks submitted at once (default: twice the cluster's GPUs, else CPUs);
            runs are claimed only when submitted, so other processes can share the rest.
    """

    def __init__(self, *, address: str | None = None, num_cpus: int | None = None, max_seeds: int = 16,
                 in_flight: int | None = None):
        self.address, self.num_cpus, self.max_seeds, self.in_flight = address, num_cpus, max_seeds, in_flight

    def _init(self):
        try:
            import ray
        except ImportError:
            raise ConfigError("the Ray executor needs Ray: pip install 'scaling-lab[ray]'") from None
        if ray.is_initialized():
            return ray, False
        lab_dir = os.path.dirname(os.path.abspath(__file__))
        try:
            ray.init(address=self.address, num_cpus=None if self.address else self.num_cpus, include_dashboard=False,
                     log_to_driver=False, runtime_env={"py_modules": [lab_dir]})
        except ConnectionError as e:
            raise ConfigError(f"cannot reach the Ray cluster at {self.address!r}: {e}; check --address") from None
        return ray, True

    def run(self, sweep: Sweep) -> None:
        ray, started = self._init()
        try:
            self._run(ray, sweep)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray, sweep: Sweep) -> None:
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        options = {"num_gpus": 1} if gpus else {"num_cpus": 1}
        limit = self.in_flight or 2 * max(1, gpus or int(resources.get("CPU", 1)))
        task = ray.remote(max_retries=1)(_train_task).options(**options)
        pending: dict = {}
        groups = sweep.claimed_groups()
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < limit and not sweep.cancelled:
                    group = next(groups, None)
                    if group is None:
                        exhausted = True
                        break
                    cfg = sweep.plan.configs[group[0]]
                    pending[task.remote(cfg.to_dict(), [sweep.plan.configs[i].seed for i in group])] = group
                if not pending:
                    if exhausted or sweep.cancelled:
                        return
                    continue
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=Sweep.POLL_S)
                if sweep.cancelled:
                    for ref, group in pending.items():
                        ray.cancel(ref, force=True)
                        sweep.interrupted(group, "the sweep was cancelled")
                    pending.clear()
                    return
                for ref in ready:
                    group = pending.pop(ref)
                    try:
                        payloads = ray.get(ref)
                    except Exception as e:
                        sweep.failed(group, getattr(e, "cause", None) or e)
                        continue
                    for i, (d, data) in zip(group, payloads):
                        cfg = sweep.plan.configs[i]
                        result = result_from_dict(d, cfg, d.get("curve", ()))
                        sweep.store.commit(result, weights=data, budget=sweep.plan.budgets[i])
                    sweep.trained_ok(group)
        except BaseException:
            for ref, group in pending.items():
                ray.cancel(ref, force=True)
                sweep.interrupted(group, "the sweep was interrupted")
            raise


def run_sweep(plan: Plan, store: RunStore | str | os.PathLike | None = None, *,
              executor: LocalExecutor | RayExecutor | str = "local", force: bool = False,
              trackers: Iterable[Tracker] = (), cancel=None) -> SweepReport:
    """Train the plan's runs that the store does not hold yet; resume-safe and shareable.

    Args:
        plan: from `grid` or `isoflop`.
        store: a RunStore or its folder (None: the default store).
        executor: "local" (in this process), "ray" (a local Ray), or an executor object.
        force: train every planned run again: a run finished in the store is kept and trained
            as a new attempt beside it (`new_attempts`).
        trackers: `Tracker`s see each run trained in this process; `SweepTracker`s also the
            sweep's steps (run i of n).
        cancel: a `threading.Event` or a callable; the current runs end `cancelled` and the
            sweep stops (the rest stays unclaimed).

    Returns:
        A SweepReport; failures are in it (status `failed` with the message), not raised.
    """
    store = store if isinstance(store, RunStore) else RunStore(store)
    if isinstance(executor, str):
        if executor not in ("local", "ray"):
            raise ConfigError(f"unknown executor {executor!r}; choose local or ray")
        executor = LocalExecutor() if executor == "local" else RayExecutor()
    if isinstance(executor, LocalExecutor):
        _check_data(plan)
    store.reap()
    if force:
        plan = new_attempts(plan, store)
    sweep = Sweep(plan, store, trackers=trackers, cancel=cancel, max_seeds=executor.max_seeds)
    todo = sum(1 for c in plan.configs if (r := store.record(c.run_id)) is None or r.status not in FINISHED)
    sweep._sweep_trackers("sweep_start", plan, todo)
    executor.run(sweep)
    report = sweep.report()
    sweep._sweep_trackers("sweep_end", report)
    return report


def new_attempts(plan: Plan, store: RunStore) -> Plan:
    """`plan` with each run the store holds finished replaced by its next attempt (a new run id
    beside it, `RunConfig.attempt`): a forced sweep trains everything again and never overwrites
    a finished run. An attempt left unfinished by a killed forced sweep is the one resumed."""
    from lab.schema import BY_PATH
    configs = []
    for c in plan.configs:
        k = c.attempt
        while (r := store.record(c.replace(attempt=k).run_id)) is not None and r.status in FINISHED:
            k += 1
            if k > BY_PATH["attempt"].high:
                raise StoreError(f"run {c.run_id} has {k} attempts in the store already; delete some with "
                                 "`scaling-lab runs --delete`")
        configs.append(c.replace(attempt=k))
    return Plan(configs=tuple(configs), budgets=plan.budgets, refused=plan.refused, description=plan.description)


def _check_data(plan: Plan) -> None:
    """Fail before claiming anything when the data cannot serve the plan (a missing file, a
    context longer than the text), rather than recording every run as failed."""
    from lab.data import load_dataset
    seen = set()
    for c in plan.configs:
        key = (c.data, c.model.context, c.eval_tokens)
        if key not in seen:
            seen.add(key)
            load_dataset(c.data).check_fits(c.model.context)
