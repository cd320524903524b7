"""The training service's workers as Ray tasks (`scaling-lab app --workers ray`, or an address).

This process stays the store's single writer, as the Ray sweeps do (`lab.executors`): one
dispatcher thread per slot of the cluster (a GPU, else a CPU) claims a batch from the queue,
sends it to a Ray task, writes the task's curve points into the store as they arrive (relayed
through a small actor), commits the results and weights the task returns, and tells the task to
stop when no page waits for its runs any more or the service stops (then the runs go back to
the queue). Text samples are answered here, in this process.
"""

import threading
import time

from lab.config import RunConfig
from lab.executors import init_ray, task_options
from lab.i18n import N_
from lab.runqueue import RunQueue
from lab.schema import Say, kept
from lab.store import RunStore, result_from_dict

RELAY_S = 0.5       # how often a dispatcher moves its task's points into the store
CANCEL_S = 1.0      # how often a task asks its relay whether to stop


class _Relay:
    """A Ray actor between one dispatcher and its task: curve points one way, stop the other."""

    def __init__(self):
        self.points, self.stop = [], False

    def put(self, run_id, metrics):
        self.points.append((run_id, metrics))

    def take(self):
        out, self.points = self.points, []
        return out

    def set_stop(self):
        self.stop = True

    def should_stop(self):
        return self.stop


def _train_relayed(config: dict, seeds: list, relay) -> list:
    """A Ray task: train a batch, send each chunk's points to `relay`, stop when it says so;
    return each result (curve included) and its weights."""
    import ray

    from lab import runtime
    runtime.setup()
    from lab.trackers import Tracker
    from lab.training import train_seeds
    from lab.weights import weights_bytes

    class Points(Tracker):
        def log(self, event):
            relay.put.remote(event.run_id, event.metrics())

    asked = {"t": 0.0, "stop": False}

    def cancel():
        if time.monotonic() - asked["t"] >= CANCEL_S:
            asked["t"] = time.monotonic()
            asked["stop"] = ray.get(relay.should_stop.remote())
        return asked["stop"]

    results = train_seeds(RunConfig.from_dict(config), seeds, trackers=[Points()], cancel=cancel)
    return [(r.to_dict(curve=True), weights_bytes(r.config, r.model)) for r in results]


def _facts_task() -> dict:
    from lab import runtime
    runtime.setup()
    from lab.worker import device_facts
    return device_facts()


class RayWorkers:
    """Dispatchers that train the queue's batches as Ray tasks (see the module doc)."""

    def __init__(self, store: RunStore, *, address: str | None = None, max_batch: int | None = None, log=print):
        self.store, self.address, self.max_batch, self.log = store, address, max_batch, log
        self.queue = RunQueue(store)
        self._threads: list[threading.Thread] = []
        self._started = False
        self.ray = None

    def start(self, stopping: threading.Event) -> int:
        """Join or start Ray, measure the cluster's device, start one dispatcher per slot; returns the slots."""
        self.ray, self._started = init_ray(self.address)
        ray = self.ray
        self.options, slots = task_options(ray)
        facts = ray.get(ray.remote(_facts_task).options(**self.options).remote())
        self.queue.set_setting("device", facts)
        from lab.worker import default_batch
        self.batch = self.max_batch or default_batch(facts["platform"])
        self.task = ray.remote(max_retries=0)(_train_relayed).options(**self.options)
        self.relay_class = ray.remote(num_cpus=0)(_Relay)
        for i in range(slots):
            t = threading.Thread(target=self._dispatch, args=(stopping,), name=f"scaling-lab ray dispatcher {i + 1}",
                                 daemon=True)
            t.start()
            self._threads.append(t)
        return slots

    def _dispatch(self, stopping: threading.Event) -> None:
        from lab.worker import Worker
        helper = Worker(self.store, name="ray samples", log=self.log)   # answers text samples here
        while not stopping.is_set():
            if helper.serve_task():
                continue
            held = self.queue.claim_next(self.batch)
            if held is None or not held.claimed:
                stopping.wait(0.5)
                continue
            try:
                with held:
                    self._run(held, stopping)
            except Exception as e:          # stored failed by the claims; the dispatcher goes on
                self.log(f"a Ray task failed: {type(e).__name__}: {e}")

    def _run(self, held, stopping: threading.Event) -> None:
        ray = self.ray
        configs = held.claimed
        ids = [c.run_id for c in configs]
        relay = self.relay_class.remote()
        ref = self.task.remote(configs[0].to_dict(), [c.seed for c in configs], relay)
        told = False
        while True:
            ready, _ = ray.wait([ref], timeout=RELAY_S)
            for run_id, metrics in ray.get(relay.take.remote()):
                self.store.log_point(run_id, metrics)
            if ready:
                break
            if not told and (stopping.is_set() or self.queue.cancelled(ids)):
                relay.set_stop.remote()
                told = True
        try:
            payloads = ray.get(ref)
        except Exception as e:
            raise RuntimeError(f"the Ray task training {', '.join(i[:8] for i in ids)} failed: "
                               f"{getattr(e, 'cause', None) or e}") from None
        for cfg, (d, data) in zip(configs, payloads):
            result = result_from_dict(d, cfg, d.get("curve", ()))
            if result.status == "cancelled" and stopping.is_set():
                self.queue.requeue([cfg.run_id], why=kept(Say(N_("the training service stopped; queued again"))))
            else:
                self.store.commit(result, weights=data, budget=held.budgets.get(cfg.run_id))
        held.claimed = []

    def stop(self, deadline: float) -> None:
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))
        if self._started and self.ray is not None:
            self.ray.shutdown()
