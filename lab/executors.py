"""Where a sweep's runs train: in this process (`LocalExecutor`) or as Ray tasks (`RayExecutor`).

Executors only place work; the sweep (`lab.sweep.Sweep`) decides what needs training through the
store's claims. `RayExecutor` sends each group of seeds to a Ray task asking for one GPU (or one
CPU on a CPU-only cluster). The tasks return results and weights as bytes and the driver commits
them: SQLite must not be written over a network file system, and remote workers may not see the
driver's disk at all, so the driver is the store's single writer. The driver holds the claims,
so a killed driver's runs are found interrupted and retrained on resume.
"""

import os

from lab.config import ConfigError, RunConfig
from lab.store import StoreTracker, result_from_dict


class LocalExecutor:
    """Trains in this process, one group of seeds at a time through `train_seeds`.

    Args:
        max_seeds: most seeds trained together in one vmapped program (1: one run at a time).
    """

    def __init__(self, *, max_seeds: int = 16):
        self.max_seeds = max_seeds

    def run(self, sweep) -> None:
        from lab.training import train_seeds
        for held in sweep.claimed_groups():
            configs = held.claimed
            tracker = StoreTracker(sweep.store, budget=held.budgets.get(configs[0].run_id))
            try:
                with held:
                    train_seeds(configs[0], [c.seed for c in configs], trackers=[tracker, *sweep.trackers],
                                cancel=sweep.cancel)
            except Exception:            # one run's error is that run's result (failed); the sweep goes on
                sweep.ended_claims(held)
                continue
            sweep.ended_claims(held)     # Ctrl-C and SystemExit leave through the `with` (interrupted)


def train_task(config: dict, seeds: list[int]) -> list[tuple[dict, bytes]]:
    """A Ray task: train a group of seeds; return each result (curve included) and its weights."""
    from lab import runtime
    runtime.setup()
    from lab.training import train_seeds
    from lab.weights import weights_bytes
    cfg = RunConfig.from_dict(config)
    return [(r.to_dict(curve=True), weights_bytes(r.config, r.model)) for r in train_seeds(cfg, seeds)]


def init_ray(address: str | None = None, num_cpus: int | None = None):
    """Ray, started here (or joined at `address`); returns (ray, whether this call started it)."""
    try:
        import ray
    except ImportError:
        raise ConfigError("the Ray executor needs Ray: pip install 'scaling-lab[ray]'") from None
    if ray.is_initialized():
        return ray, False
    lab_dir = os.path.dirname(os.path.abspath(__file__))
    try:
        ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
                 log_to_driver=False, runtime_env={"py_modules": [lab_dir]})
    except ConnectionError as e:
        raise ConfigError(f"cannot reach the Ray cluster at {address!r}: {e}; check --address") from None
    return ray, True


def task_options(ray) -> tuple[dict, int]:
    """(options, slots): one GPU per task on a cluster with GPUs, else one CPU; the slots to fill."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    return ({"num_gpus": 1} if gpus else {"num_cpus": 1}), max(1, gpus or int(resources.get("CPU", 1)))


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

    POLL_S = 0.5

    def __init__(self, *, address: str | None = None, num_cpus: int | None = None, max_seeds: int = 16,
                 in_flight: int | None = None):
        self.address, self.num_cpus, self.max_seeds, self.in_flight = address, num_cpus, max_seeds, in_flight

    def run(self, sweep) -> None:
        ray, started = init_ray(self.address, self.num_cpus)
        try:
            self._run(ray, sweep)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray, sweep) -> None:
        options, slots = task_options(ray)
        limit = self.in_flight or 2 * slots
        task = ray.remote(max_retries=1)(train_task).options(**options)
        pending: dict = {}
        groups = sweep.claimed_groups()
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < limit and not sweep.cancelled:
                    held = next(groups, None)
                    if held is None:
                        exhausted = True
                        break
                    cfg = held.claimed[0]
                    pending[task.remote(cfg.to_dict(), [c.seed for c in held.claimed])] = held
                if not pending:
                    if exhausted or sweep.cancelled:
                        return
                    continue
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=self.POLL_S)
                if sweep.cancelled:
                    for ref, held in pending.items():
                        ray.cancel(ref, force=True)
                        held.give_back(KeyboardInterrupt("the sweep was cancelled"))
                    pending.clear()
                    return
                for ref in ready:
                    held = pending.pop(ref)
                    try:
                        payloads = ray.get(ref)
                    except Exception as e:
                        held.give_back(getattr(e, "cause", None) or e)
                        sweep.ended_claims(held)
                        continue
                    for cfg, (d, data) in zip(held.claimed, payloads):
                        result = result_from_dict(d, cfg, d.get("curve", ()))
                        sweep.store.commit(result, weights=data, budget=held.budgets.get(cfg.run_id))
                    sweep.ended_claims(held)
        except BaseException:
            for ref, held in pending.items():
                ray.cancel(ref, force=True)
                held.give_back(KeyboardInterrupt("the sweep was interrupted"))
            raise
