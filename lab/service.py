"""The training service: workers that take queued runs from the store and train them.

Pages of the app never train (they never import JAX): they ask the queue (`lab.runqueue`) and
follow what the store holds. The service is where training lives:

- `lab.worker.Worker`: the loop that takes the queue's head with its batch of seeds and trains
  it (a module of its own).
- `Service`: starts N workers (processes, `scaling-lab worker`, or threads in this process for
  tests and scripts), restarts a worker that died, and keeps house (`RunQueue.reap`: a killed
  worker's run goes back to the queue, requests of vanished pages are dropped). With
  `mode="ray"` the workers are Ray tasks instead: this process claims, relays their curve
  points and commits their results, staying the store's single writer.

Workers are processes by default because JAX on CPU keeps every core busy with one model and
each process holds its compiled programs (hundreds of MB); their number follows the cores.
"""

import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

from lab.config import ConfigError
from lab.estimate import cores
from lab.liveness import owner_alive, process_id
from lab.runqueue import RunQueue
from lab.store import RunStore
from lab.worker import Worker

BEAT_S = 5.0          # the service says it is alive this often
RESTART_S = 2.0       # a worker that died is started again after this long


def default_workers() -> int:
    """Workers for this machine: one per two cores (one JAX process keeps two CPU cores busy;
    more workers than that slow each run without training more), at least one."""
    return max(1, cores() // 2)


class Service:
    """The training service of one store: N workers and their keeper.

    Args:
        store: the run store (or its folder).
        workers: how many (default `default_workers()`).
        mode: "process" (each worker a `scaling-lab worker` process: the app), "thread" (workers in
            this process: tests, scripts) or "ray" (Ray tasks on a local or given cluster).
        address: with mode "ray": an existing cluster; None starts a local Ray.
        max_batch: queued runs of one batch trained together (default per platform).
        parent: a pid; the service ends when that process does (a notebook's kernel).
        log: where the service's lines go (default stderr).
    """

    def __init__(self, store: RunStore | str | os.PathLike, *, workers: int | None = None, mode: str = "process",
                 address: str | None = None, max_batch: int | None = None, parent: int | None = None,
                 env: dict | None = None, log=None):
        if mode not in ("process", "thread", "ray"):
            raise ConfigError(f"the training service's workers are processes, threads or ray, not {mode!r}")
        if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
            raise ConfigError(f"--workers must be 1 or more (or ray), got {workers!r}")
        self.store = store if isinstance(store, RunStore) else RunStore(store)
        self.queue = RunQueue(self.store)
        self.mode, self.address, self.max_batch, self.parent = mode, address, max_batch, parent
        self.workers = int(workers) if workers is not None else default_workers()
        self.env = env
        self.log = log or (lambda msg: print(f"[training service] {msg}", file=sys.stderr, flush=True))
        self.stopping = threading.Event()
        self._procs: list = []
        self._threads: list[threading.Thread] = []
        self._keeper: threading.Thread | None = None
        self._ray = None

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> "Service":
        other = self.queue.service()
        if other is not None and other.get("owner") != process_id():
            raise ConfigError(f"a training service (process {other['owner'].split('|')[2]}) already serves the store "
                              f"{self.store.path}; stop it first or use another --store")
        self.queue.reap()
        self._say()
        if self.mode == "process":
            self._procs = [None] * self.workers
            self._restarted = [0.0] * self.workers
            for i in range(self.workers):
                self._spawn(i)
        elif self.mode == "thread":
            for i in range(self.workers):
                t = threading.Thread(target=Worker(self.store, max_batch=self.max_batch, name=f"worker {i + 1}",
                                                   log=self.log).run, args=(self.stopping,),
                                     name=f"scaling-lab worker {i + 1}", daemon=True)
                t.start()
                self._threads.append(t)
        else:
            from lab.ray_service import RayWorkers      # Ray only when asked for
            self._ray = RayWorkers(self.store, address=self.address, max_batch=self.max_batch, log=self.log)
            self.workers = self._ray.start(self.stopping)
            self._say()
        self._keeper = threading.Thread(target=self._keep, name="scaling-lab service keeper", daemon=True)
        self._keeper.start()
        self.log(f"{self.workers} worker(s) ({self.mode}) on the store {self.store.path}")
        return self

    def _say(self) -> None:
        self.queue.set_setting("service", {"owner": process_id(), "workers": self.workers, "mode": self.mode,
                                           "pid": os.getpid(), "beat": time.time(), "store": str(self.store.path)})

    def _spawn(self, i: int) -> None:
        cmd = [sys.executable, "-m", "lab", "worker", "--store", str(self.store.path), "--name", f"worker {i + 1}"]
        if self.max_batch:
            cmd += ["--max-batch", str(self.max_batch)]
        from lab import runtime
        env = runtime.fast_allocator_env({k: v for k, v in (self.env or os.environ).items()
                                          if k not in ("LD_PRELOAD", "MALLOC_CONF")})
        env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        self._procs[i] = subprocess.Popen(cmd, env=env, start_new_session=True, stdin=subprocess.DEVNULL)
        self._restarted[i] = time.monotonic()

    def _keep(self) -> None:
        last_beat = 0.0
        while not self.stopping.wait(1.0):
            try:
                if time.monotonic() - last_beat >= BEAT_S:
                    self._say()
                    last_beat = time.monotonic()
                done = self.queue.reap()
                for run_id in done["requeued"]:
                    self.log(f"run {run_id[:8]}: its worker died; queued again")
                for run_id in done["failed"]:
                    self.log(f"run {run_id[:8]}: its worker died {len(done['failed'])} time(s); failed")
                for i, p in enumerate(self._procs):
                    if p is not None and p.poll() is not None and time.monotonic() - self._restarted[i] > RESTART_S:
                        self.log(f"worker {i + 1} ended (status {p.returncode}); starting it again")
                        self._spawn(i)
                if self.parent is not None and not owner_alive(f"{process_id().rsplit('|', 2)[0]}|{self.parent}|-",
                                                               None):
                    self.log(f"its parent process {self.parent} ended; stopping")
                    threading.Thread(target=self.stop, daemon=True).start()
                    return
            except Exception:        # housekeeping must never kill the service; say what happened
                self.log("housekeeping failed:\n" + traceback.format_exc(limit=3))

    def alive(self) -> int:
        """Workers running now."""
        if self.mode == "process":
            return sum(1 for p in self._procs if p is not None and p.poll() is None)
        if self.mode == "thread":
            return sum(1 for t in self._threads if t.is_alive())
        return self.workers

    def stop(self, timeout: float = 60.0) -> list[str]:
        """Stop every worker after its current chunk; their runs go back to the queue. Returns the
        run ids queued again."""
        if self.stopping.is_set() and not self._procs and not self._threads:
            return []
        before = {t.run_id for t in self.queue.view().training}
        self.stopping.set()
        deadline = time.monotonic() + timeout
        for p in self._procs:
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self._procs:
            if p is None:
                continue
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))
        if self._ray is not None:
            self._ray.stop(deadline)
        self._procs, self._threads = [], []
        self.queue.reap()            # a worker killed after the timeout: its runs go back too
        back = [w.run_id for w in self.queue.view().waiting if w.run_id in before]
        with self.store._tx() as con:
            con.execute("DELETE FROM settings WHERE key = 'service'")
        return back


def ensure_service(store: RunStore, *, log_path: Path | None = None, workers: int = 1) -> dict | None:
    """A live training service for `store`: the running one, else one started now as a process of its
    own (`scaling-lab service`), ending when this process ends. Returns what the store says of the
    service (None until the new one has said it is alive)."""
    queue = RunQueue(store)
    info = queue.service()
    if info is not None:
        return info
    log = open(log_path or (store.path / "service.log"), "ab")
    subprocess.Popen([sys.executable, "-m", "lab", "service", "--store", str(store.path), "--workers", str(workers),
                      "--parent", str(os.getpid())], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                     start_new_session=True, env={**os.environ, "SCALING_LAB_REEXEC": os.environ.get(
                         "SCALING_LAB_REEXEC", "")})
    log.close()
    return None


__all__ = ["Service", "default_workers", "ensure_service"]
