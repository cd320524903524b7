"""Sweep plans (grids, ladders, IsoFLOP budgets) and the sweep that trains one against a store.

One module, over the usual size, because a plan and the sweep that runs it share one contract:
the store decides what still needs training (claims), executors (`lab.executors`) only place
work, and estimates (`lab.estimate`) take the plan's configs.

- Plans are pure and frozen: `grid` (width x depth x tokens x optimizer x lr x seed) and
  `isoflop` (for each compute budget C and model size, D = C / flops_per_token, rounded to
  whole steps). `Plan.summary()` states runs, FLOPs and an estimated time.
- `run_sweep(plan, store)` trains what the store does not hold yet. Runs already done (or
  diverged) are reused, interrupted, failed and cancelled ones are trained again, runs another
  process is training are waited for. Same-shape runs that differ only in their seed train
  together through `vmap` (`train_seeds`): one compiled program, one dispatch per chunk.
- Executors: `lab.executors.LocalExecutor` trains in this process (trackers see every event);
  `lab.executors.RayExecutor` sends each group of seeds to a Ray task and stays the store's
  single writer.
"""

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
from lab.estimate import Estimate, Speed, estimate, format_seconds
from lab.executors import LocalExecutor, RayExecutor
from lab.store import FINISHED, Claims, RunRecord, RunStore, StoreError, cancel_requested
from lab.trackers import Tracker

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

    def estimate(self, store: RunStore | None = None, speed: Speed | None = None) -> Estimate:
        """Time to train the runs the store does not hold yet on `speed`'s device (default: this
        process's, measured; a page passes the training service's): see `lab.estimate`."""
        if speed is None:
            from lab.estimate import local_speed
            speed = local_speed()
        return estimate(self.configs, store.records() if store is not None else (), speed)

    def summary(self, store: RunStore | None = None, speed: Speed | None = None) -> str:
        """Runs, FLOPs and estimated time, in a few lines for people."""
        est = self.estimate(store, speed)
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


# --- the sweep ----------------------------------------------------------------------------------

class Sweep:
    """One sweep in progress: claims runs from the store, records their ends, tells trackers.
    Executors ask it for claimed groups (`claimed_groups`) and report each group's end
    (`ended_claims`); a group's `Claims` gives back what it still holds, so failures are stored."""

    POLL_S = 0.5

    def __init__(self, plan: Plan, store: RunStore, *, trackers: Iterable[Tracker] = (), cancel=None,
                 max_seeds: int = 16):
        self.plan, self.store, self.cancel = plan, store, cancel
        self.trackers = list(trackers)
        self.max_seeds = max_seeds
        self.index = {c.run_id: i for i, c in enumerate(plan.configs)}
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

    def _claim(self, indices: Sequence[int]) -> Claims | None:
        """Claim runs of one group; reuse the finished, defer the busy (the sweep's policy: wait)."""
        held = self.store.claims([self.plan.configs[i] for i in indices],
                                 budgets=[self.plan.budgets[i] for i in indices])
        for run_id, rec in held.finished.items():
            self.reused.append(run_id)
            self.end(self.index[run_id], rec)
        self.deferred.extend(self.index[c.run_id] for c in held.busy)
        return held if held.claimed else None

    def claimed_groups(self):
        """Groups of runs claimed for this thread (`Claims`), in plan order; then the runs that
        other processes were training, once they can be claimed (waiting for them meanwhile)."""
        for group in self.plan.groups(self.max_seeds):
            if self.cancelled:
                return
            held = self._claim(group)
            if held is not None:
                yield held
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
                    held = self._claim([i])
                    if held is not None:
                        yield held
            if self.deferred:
                time.sleep(self.POLL_S)

    def ended_claims(self, held: Claims) -> None:
        """A group's training ended (its `Claims` already gave back what failed): record the ends."""
        for c in held.claimed:
            i = self.index[c.run_id]
            rec = self.store.record(c.run_id)
            if rec is not None and rec.status not in ("failed", "interrupted", "running"):
                self.trained.append(c.run_id)
            if rec is None or rec.status != "interrupted":
                self.end(i, rec)

    def report(self) -> "SweepReport":
        order = sorted(self.ended)
        return SweepReport(records=tuple(self.ended[i] for i in order), trained=tuple(self.trained),
                           reused=tuple(self.reused),
                           missing=tuple(c.run_id for i, c in enumerate(self.plan.configs) if i not in self.ended),
                           cancelled=self.cancelled)


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
