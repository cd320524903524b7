"""A sweep: a plan (`lab.plans`) trained against the run store, resumably, and its report.

`run_sweep(plan, store)` trains what the store does not hold yet. Runs already done (or
diverged) are reused, interrupted, failed and cancelled ones are trained again, runs another
process is training are waited for. Same-shape runs that differ only in their seed train
together through `vmap` (`train_seeds`): one compiled program, one dispatch per chunk. The store
decides what needs training (claims); executors (`lab.executors`) only place the work: in this
process, where trackers see every event, or as Ray tasks, the store's single writer staying
here. `SweepBar` is the command line's progress bar over a sweep.
"""

import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lab.config import ConfigError
from lab.estimate import Estimate, Speed, estimate
from lab.executors import LocalExecutor, RayExecutor
from lab.i18n import N_, _
from lab.plans import Plan
from lab.store import FINISHED, Claims, RunRecord, RunStore, StoreError
from lab.trackers import Tracker, cancel_requested

# A run's status in words (the status values themselves stay English: they are the store's).
STATUS_WORDS = {"done": N_("done"), "diverged": N_("diverged"), "cancelled": N_("cancelled"), "failed": N_("failed"),
                "interrupted": N_("interrupted"), "running": N_("running")}


def _status(status: str) -> str:
    return _(STATUS_WORDS[status]) if status in STATUS_WORDS else status


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
        """The sweep in words, in the current language (a run's own error message stays as stored)."""
        # i18n: a count of runs and their status, e.g. "3 done"
        counts = ", ".join(_("{n} {status}").format(n=n, status=_status(s)) for s, n in sorted(self.counts.items()))
        out = _("{n} runs: {counts}; trained {trained}, reused {reused}").format(
            n=len(self.records), counts=counts or _("none"), trained=len(self.trained), reused=len(self.reused))
        if self.missing:
            out += _(", {n} not reached (cancelled)").format(n=len(self.missing))
        for r in self.records:
            if r.status not in FINISHED and r.error:
                out += f"\n  {r.run_id} {_status(r.status)}: {r.error.splitlines()[0][:300]}"
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


def plan_estimate(plan: Plan, store: RunStore | None = None, speed: Speed | None = None) -> Estimate:
    """Time to train the plan's runs that `store` does not hold yet, on `speed`'s device (default:
    this process's, measured; a page passes the training service's): `lab.estimate.estimate`."""
    if speed is None:   # measure this device (imports JAX)
        from lab.estimate import local_speed

        speed = local_speed()
    return estimate(plan.configs, store.records() if store is not None else (), speed)


def plan_summary(plan: Plan, store: RunStore | None = None, speed: Speed | None = None) -> str:
    """The plan in a few lines (`Plan.summary`), its time estimated as in `plan_estimate`, in the
    current language (the Sweep tab's cost text)."""
    return plan.summary(plan_estimate(plan, store, speed))


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
                raise StoreError(_("run {run_id} has {n} attempts in the store already; delete some with "
                                   "`scaling-lab runs --delete`").format(run_id=c.run_id, n=k))
        configs.append(c.replace(attempt=k))
    return Plan(configs=tuple(configs), budgets=plan.budgets, refused=plan.refused, description=plan.description)


def _check_data(plan: Plan) -> None:
    """Fail before claiming anything when the data cannot serve the plan (a missing file, a
    context longer than the text), rather than recording every run as failed."""
    from lab.data import load_dataset
    seen = set()
    for c in plan.configs:
        key = (c.data, c.model.vocab, c.model.context, c.eval_tokens)
        if key not in seen:
            seen.add(key)
            load_dataset(c.data, c.model.vocab).check_fits(c.model.context)
