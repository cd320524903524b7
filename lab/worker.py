"""A worker of the training service: takes the head of the queue with the queued runs of its batch
(the same config but for the seed, up to `max_batch`, trained together through `vmap`), trains
them under the store's claims, and answers small tasks (text from a stored model) between runs
and between chunks. Stop (`stop` event, SIGTERM) ends the current chunk and puts the runs back in
the queue; a page's withdrawal stops a run nobody waits for any more.

`lab.service` starts workers as processes (`scaling-lab worker`, `worker_main`) or threads;
`lab.ray_service` runs the same training as Ray tasks and uses a Worker for the small tasks.
"""

import os
import signal
import sys
import threading
import time

from lab.config import ConfigError
from lab.runqueue import RunQueue
from lab.i18n import N_
from lab.schema import Say, error_text, kept
from lab.store import RunStore, StoreTracker

POLL_S = 0.5          # an idle worker looks at the queue this often
CANCEL_POLL_S = 0.5   # a training worker asks whether its runs are still wanted at most this often


def default_batch(platform: str) -> int:
    """Queued runs of one config (seeds) trained together. On CPU a vmap of K first-run models runs
    1.12x (K=2), 1.09x (4) and 1.05x (8) faster than K runs in a row (bench/bench_batch.py), but the
    first of them then waits for all: two at a time keeps most of the gain. On an accelerator vmap
    is how the device fills (bench/gpu_check.py measures 8 seeds against one)."""
    return 2 if platform == "cpu" else 16


class _ServiceTracker(StoreTracker):
    """The store's tracker for a worker: a run cancelled because the worker stops goes back to the
    queue instead of being stored `cancelled`."""

    def __init__(self, store, queue: RunQueue, stopping, budgets: dict):
        super().__init__(store)
        self.queue, self.stopping, self.budgets = queue, stopping, budgets

    def finish(self, result):
        if result.status == "cancelled" and self.stopping():
            self.queue.requeue([result.run_id], why=kept(Say(N_("the training service stopped; queued again"))))
            return
        self.budget = self.budgets.get(result.run_id)
        super().finish(result)


def device_facts() -> dict:
    """What a worker tells pages about its device (they never import JAX): `lab.estimate.Speed`."""
    from lab.estimate import local_speed
    return local_speed().to_dict()


class Worker:
    """Trains what the queue holds, a batch at a time, until `stop` is set.

    Args:
        store: the run store (or its folder).
        max_batch: most queued runs of one batch trained together (default: `default_batch`).
        name: how logs name it.
    """

    def __init__(self, store: RunStore | str | os.PathLike, *, max_batch: int | None = None, name: str = "worker",
                 log=None):
        self.store = store if isinstance(store, RunStore) else RunStore(store)
        self.queue = RunQueue(self.store)
        self.max_batch = max_batch
        self.name = name
        self.log = log or (lambda msg: print(f"[{name}] {msg}", file=sys.stderr, flush=True))
        self._checked = 0.0

    def run(self, stop: threading.Event) -> None:
        from lab import runtime
        runtime.setup()
        facts = device_facts()
        self.queue.set_setting("device", facts)
        batch = self.max_batch or default_batch(facts["platform"])
        while not stop.is_set():
            if self.serve_task():
                continue
            held = self.queue.claim_next(batch)
            if held is None or not held.claimed:
                stop.wait(POLL_S)
                continue
            self.train(held, stop)

    def train(self, held, stop: threading.Event) -> None:
        from lab.training import train_seeds
        configs = held.claimed
        ids = [c.run_id for c in configs]
        self.log(f"training {len(ids)} run(s) {', '.join(i[:8] for i in ids)}")

        def cancel() -> bool:
            if stop.is_set():
                return True
            now = time.monotonic()
            if now - self._checked < CANCEL_POLL_S:
                return False
            self._checked = now
            self.serve_task()                 # a student's text sample need not wait for the run
            return self.queue.cancelled(ids)

        tracker = _ServiceTracker(self.store, self.queue, stop.is_set, held.budgets)
        try:
            with held:
                train_seeds(configs[0], [c.seed for c in configs], trackers=[tracker], cancel=cancel)
                held.claimed = []             # committed, or queued again by the tracker
        except Exception as e:                # stored failed by the claims; the worker goes on
            self.log(f"run(s) {', '.join(i[:8] for i in ids)} failed: {type(e).__name__}: {e}")

    def serve_task(self) -> bool:
        """Answer one waiting task, if any (kind "sample": text from a stored model)."""
        task = self.queue.take_task()
        if task is None:
            return False
        task_id, kind, args = task
        try:
            if kind != "sample":
                raise ConfigError(f"unknown task kind {kind!r}")
            from lab.sample import sample
            text = sample(self.store, args["run_id"], args.get("prompt", ""), length=int(args.get("length", 200)),
                          temperature=float(args.get("temperature", 0.8)), seed=int(args.get("seed", 0)))
            self.queue.finish_task(task_id, result=text)
        except Exception as e:
            self.queue.finish_task(task_id, error=error_text(e))         # the page spells it (spell_error)
        return True


def worker_main(store: str, max_batch: int | None = None, name: str = "worker") -> int:
    """`scaling-lab worker`: one worker process; SIGTERM or SIGINT ends it after the current chunk,
    its runs back in the queue."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    Worker(store, max_batch=max_batch, name=name).run(stop)
    return 0
