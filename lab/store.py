"""The run store: one SQLite database (WAL) for configs, status, results and loss curves; weights beside it.

One module, over the usual size, because its parts share one invariant and are only safe
together: a run's record is complete or absent. The queue of runs asked for (`lab.runqueue`),
process liveness (`lab.liveness`), the weights format (`lab.weights`), the database's tables,
connections and upgrades (`lab.storedb`), who asked (`lab.asker`) and the records it hands out
(`lab.records`) live in modules of their own, on this store's connections and transactions.

- Commit: the weights file is written first (temp file, fsync, `os.replace`), then the
  result, the status and the whole curve go in ONE transaction. A run counts as finished
  only once that transaction has committed; a crash before it leaves a `running` row (or an
  orphan weights file that the retrain overwrites), never half a result.
- Claims, the one protocol every trainer follows (`claims`): before training, a thread claims
  its runs in one `BEGIN IMMEDIATE` transaction (SQLite's single writer lock): each row is
  inserted or updated to `running` with the process and thread as owner and `attempts + 1`; a
  run the store holds finished is handed back for reuse, one another live owner holds is
  reported busy. Two claimants cannot both win one run. The claim is a context: what it still
  holds when its block ends (an exception, a Ctrl-C, runs claimed but never trained) is given
  back `failed` or `interrupted`, so no claim outlives its trainer. Callers keep only their
  policy for busy runs: the command line refuses, a sweep waits, the training service queues.
- Finished runs are kept: a retrain of a `done` or `diverged` run is a new attempt
  (`RunConfig.attempt`, its own run id, `claims(..., again=True)`), stored beside it; so is a
  forced train or sweep. Nothing trains over a finished run.
- Interrupted runs: a `running` row whose owner is gone (`lab.liveness.owner_alive`: kill -9 is
  noticed at once on this host; elsewhere a lease) is interrupted and is claimed again on
  resume; the training service puts it back in the queue when pages still wait for it.
- Who asked: a run trained for a page records its asker (browser id, display name, role);
  `delete` lets a student remove only what they asked for, the teacher and the command line
  anything.

Durability: WAL with `synchronous=NORMAL` survives any process crash (`kill -9`) without
losing a committed run; only a power loss could roll back the last commits, which are then
retrained, never seen half-written.

Keep a store on a local disk: SQLite's locks are not reliable on network file systems.
Clusters share results through one driver that writes the store (`lab.sweep.RayExecutor`, the
training service with `--workers ray`).

Layout of a store folder: `runs.sqlite` (+ `-wal`, `-shm`; its tables in `lab.storedb`) and
`weights/<run_id>.eqx` (`lab.weights`).
"""

import contextlib
import json
import math
import os
import re
import sqlite3
import tempfile
import threading
import time
import warnings
from pathlib import Path

from lab import storedb
from lab.asker import Asker
from lab.config import RunConfig
from lab.i18n import N_, _
from lab.jsonsafe import json_safe
from lab.liveness import LEASE_S, ensure_heartbeat, owner_alive, owner_id, process_id
from lab.records import COLUMNS, RunRecord, result_from_dict
from lab.schema import BY_PATH, Say, error_text, kept
from lab.storedb import DB_NAME, SCHEMA_VERSION, StoreError
from lab.trackers import Event, RunResult, Tracker, cancel_requested
from lab.weights import read_weights

__all__ = ["RunStore", "RunRecord", "Claims", "StoreTracker", "StoreError", "FINISHED", "COLUMNS", "LEASE_S",
           "SCHEMA_VERSION", "check_run_id", "default_path", "result_from_dict"]

WEIGHTS_DIR = "weights"
FINISHED = ("done", "diverged")   # terminal: not retrained unless forced
RUN_ID = re.compile(r"^[0-9a-f]{16}$")



def default_path() -> Path:
    """`$SCALING_LAB_STORE`, else `~/.local/share/scaling-lab` (XDG data home when set)."""
    env = os.environ.get("SCALING_LAB_STORE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "scaling-lab"


def check_run_id(run_id: str) -> str:
    """Refuse anything but 16 lowercase hex digits (run ids become file names)."""
    if not isinstance(run_id, str) or not RUN_ID.match(run_id):
        raise StoreError(_("{run_id} is not a run id (16 hex digits, e.g. 3fa2c4e1b0d9a876); list run ids with "
                           "`scaling-lab runs`").format(run_id=repr(run_id)))
    return run_id


def _dumps(value) -> str:
    return json.dumps(json_safe(value), sort_keys=True, separators=(",", ":"), allow_nan=False)


class Claims:
    """The answer to `RunStore.claims`, and the context that keeps it honest.

    `claimed`: the configs this thread holds and must train now; `finished`: run id -> the stored
    record of runs done or diverged (reuse them); `busy`: configs another live owner trains
    (the caller's policy: wait, follow, queue or refuse); `attempt`: the attempt number when a
    retrain was asked (`again`), else None. On leaving the `with` block, every claimed run still
    `running` under this owner is given back: `failed` after an exception, `interrupted` after
    a Ctrl-C or when it was never trained; runs committed meanwhile are untouched.
    """

    def __init__(self, store: "RunStore", claimed, finished, busy, attempt=None, budgets=None):
        self.store = store
        self.claimed: list[RunConfig] = list(claimed)
        self.budgets: dict[str, float | None] = dict(zip((c.run_id for c in self.claimed), budgets or ()))
        self.finished: dict[str, RunRecord] = dict(finished)
        self.busy: list[RunConfig] = list(busy)
        self.attempt: int | None = attempt

    @property
    def run_ids(self) -> list[str]:
        return [c.run_id for c in self.claimed]

    def __enter__(self) -> "Claims":
        return self

    def __exit__(self, etype, error, tb) -> bool:
        self.give_back(error, etype)
        return False

    def give_back(self, error: BaseException | None = None, etype=None) -> None:
        """Release what is still held: failed (an exception), else interrupted."""
        if not self.claimed:
            return
        etype = etype or (type(error) if error is not None else None)
        if etype is None:
            status, why = "interrupted", "claimed but not trained"
        else:
            status = "failed" if issubclass(etype, Exception) else "interrupted"
            text = f": {error}" if error is not None and str(error) else ""
            why = ((error_text(error) if error is not None else etype.__name__) if status == "failed"
                   else kept(Say(N_("interrupted ({what})"), what=f"{etype.__name__}{text}")))
        self.store.release(self.run_ids, status=status, error=why)


def process_ended(owner: str) -> str:
    """A run's error when the process that trained it ended first (kept in words, `lab.schema.kept`)."""
    return kept(Say(N_("its process ({owner}) ended before the run finished"), owner=owner))


class RunStore:
    """Runs, results, curves and weights in one folder. Safe to share between processes and threads.

    Args:
        path: the store folder (created if missing); None means `default_path()`. A path to an
            existing `.sqlite` file uses that database with `weights/` beside it.

    Raises:
        StoreError: the path is not a folder, or its database has a newer schema than this code.
    """

    def __init__(self, path: str | os.PathLike | None = None):
        path = Path(path).expanduser() if path is not None else default_path()
        if path.is_file() or path.suffix in (".sqlite", ".db"):
            self.path, self.db_path = path.parent, path
        else:
            self.path, self.db_path = path, path / DB_NAME
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            (self.path / WEIGHTS_DIR).mkdir(exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise StoreError(_("store path {path} is not a folder; pass a folder to --store").format(
                path=repr(str(self.path)))) from None
        except PermissionError:
            raise StoreError(_("cannot create the store folder {path} (permission denied); pass a writable folder "
                               "to --store or set $SCALING_LAB_STORE").format(path=repr(str(self.path)))) from None
        self.weights_dir = self.path / WEIGHTS_DIR
        self._local = threading.local()
        storedb.upgrade(self._con(), self.db_path)

    def __repr__(self):
        return f"RunStore({str(self.path)!r})"

    # --- connections and transactions -------------------------------------------------------

    def _con(self) -> sqlite3.Connection:
        """One connection per thread and process (sqlite3 connections must not cross either)."""
        con = getattr(self._local, "con", None)
        if con is None or self._local.pid != os.getpid():
            try:
                con = storedb.connect(self.db_path)
            except sqlite3.DatabaseError as e:
                raise StoreError(_("cannot open the run store {path} ({error}); pass another --store folder").format(
                    path=repr(str(self.db_path)), error=e)) from None
            self._local.con, self._local.pid = con, os.getpid()
        return con

    def _tx(self, write: bool = True):
        """A transaction on this thread's connection (`lab.storedb.transaction`)."""
        return storedb.transaction(self._con(), write)

    def _ensure_heartbeat(self) -> None:
        ensure_heartbeat(self.db_path, storedb.connect)

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    def integrity(self) -> str:
        """SQLite's `PRAGMA integrity_check`: 'ok' for a sound database."""
        return "; ".join(r[0] for r in self._con().execute("PRAGMA integrity_check").fetchall())

    # --- reading ------------------------------------------------------------------------------

    def _record(self, row: sqlite3.Row, curve=()) -> RunRecord:
        config = RunConfig.from_dict(json.loads(row["config"]))
        result = None
        if row["result"] is not None:
            result = result_from_dict(json.loads(row["result"]), config, curve)
        status = row["status"]
        if status == "running" and not owner_alive(row["owner"], row["heartbeat"]):
            status = "interrupted"  # what it is; `reap` or the next claim writes it down
        return RunRecord(run_id=row["run_id"], config=config, status=status, attempts=row["attempts"],
                         error=row["error"], budget=row["budget"], created=row["created"], started=row["started"],
                         finished=row["finished"], owner=row["owner"] if status == "running" else None,
                         has_weights=bool(row["weights"]), result=result, asked_by=row["asked_by"],
                         asked_name=row["asked_name"], asked_role=row["asked_role"])

    def _curve_rows(self, con, run_id: str) -> list[dict]:
        rows = con.execute("SELECT metrics FROM curves WHERE run_id = ? ORDER BY step", (run_id,)).fetchall()
        return [{k: (math.nan if v is None else v) for k, v in json.loads(r[0]).items()} for r in rows]

    def record(self, run_id: str, *, curve: bool = False) -> RunRecord | None:
        """The run's row in any state (None when absent); with its curve in the result if asked."""
        check_run_id(run_id)
        with self._tx(write=False) as con:
            row = con.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                return None
            return self._record(row, self._curve_rows(con, run_id) if curve and row["result"] else ())

    def records(self, status: str | None = None) -> list[RunRecord]:
        """Every run (oldest first), or those with `status` (as `RunRecord.status` shows it)."""
        rows = self._con().execute("SELECT * FROM runs ORDER BY created, run_id").fetchall()
        recs = [self._record(r) for r in rows]
        return [r for r in recs if status is None or r.status == status]

    def training_elsewhere(self) -> int:
        """How many runs other processes are training in this store now (live owners only): a
        page tells its student the server is busy when they share its cores."""
        rows = self._con().execute("SELECT owner, heartbeat FROM runs WHERE status = 'running'").fetchall()
        me, now = process_id(), time.time()
        return sum(1 for r in rows if not (r["owner"] or "").startswith(me + "|")
                   and owner_alive(r["owner"], r["heartbeat"], now))

    def get(self, run_id: str) -> RunResult | None:
        """The stored result of a finished run (done, diverged or cancelled), curve included, else None.

        Its `model` is None: load weights with `load_model`."""
        rec = self.record(run_id, curve=True)
        return rec.result if rec is not None else None

    def resolve(self, prefix: str) -> str:
        """The full run id that `prefix` (at least 4 hex digits) names, or a StoreError saying why not."""
        p = str(prefix).strip().lower()
        if not re.fullmatch(r"[0-9a-f]{4,16}", p):
            raise StoreError(_("{prefix} is not a run id (16 hex digits; a unique prefix of 4 or more works); list "
                               "run ids with `scaling-lab runs --store {store}`").format(prefix=repr(prefix),
                                                                                         store=self.path))
        rows = self._con().execute("SELECT run_id FROM runs WHERE substr(run_id, 1, ?) = ?", (len(p), p)).fetchall()
        if len(rows) == 1:
            return rows[0][0]
        if not rows:
            raise StoreError(_("no run {run_id} in the store {path}; list run ids with "
                               "`scaling-lab runs --store {store}`").format(run_id=repr(prefix),
                                                                            path=repr(str(self.path)), store=self.path))
        raise StoreError(_("{prefix} names {n} runs ({ids}); give more digits").format(
            prefix=repr(prefix), n=len(rows), ids=", ".join(r[0] for r in rows[:5])))

    def table(self) -> "pandas.DataFrame":  # noqa: F821
        """All runs, one row each, columns `COLUMNS` (status as `RunRecord` reports it)."""
        import pandas as pd
        return pd.DataFrame([r.to_dict() for r in self.records()], columns=list(COLUMNS))

    def finished_table(self) -> "pandas.DataFrame":  # noqa: F821
        """Runs that ended by themselves (`done` and `diverged`: fits keep the former and say how
        many of the latter they left out). Cancelled, failed and unfinished runs are not here."""
        df = self.table()
        return df[df["status"].isin(FINISHED)].reset_index(drop=True)

    def curve_points(self, run_id: str) -> list[dict]:
        """The run's curve points so far (dicts of `Event.metrics()`), also while it trains; [] when absent."""
        return self._curve_rows(self._con(), check_run_id(run_id))

    def curve(self, run_id: str) -> "pandas.DataFrame":  # noqa: F821
        """The run's loss curve, one row per chunk of steps (also the partial curve of a running run)."""
        import pandas as pd
        check_run_id(run_id)
        if self.record(run_id) is None:
            self.resolve(run_id)  # raises the helpful error
        return pd.DataFrame(self._curve_rows(self._con(), run_id))

    def weights_path(self, run_id: str) -> Path:
        """weights/<run_id>.eqx; the id is checked first so that no path leaves the store folder."""
        path = (self.weights_dir / f"{check_run_id(run_id)}.eqx").resolve()
        if path.parent != self.weights_dir.resolve():
            raise StoreError(f"weights path {path} leaves the store folder {self.weights_dir}")
        return path

    def load_model(self, run_id: str):
        """The trained Equinox model of a stored run.

        Raises:
            StoreError: no such run, or it has no weights (it failed, or is still running).
        """
        rec = self.record(check_run_id(run_id))
        if rec is None:
            self.resolve(run_id)
        path = self.weights_path(run_id)
        if rec.status not in ("done", "diverged", "cancelled") or not rec.has_weights or not path.exists():
            raise StoreError(_("run {run_id} has no stored weights (status {status}); train it again with "
                               "`scaling-lab train` (`--force` for a new attempt beside a finished run)").format(
                run_id=run_id, status=rec.status))
        with open(path, "rb") as f:
            config, model = read_weights(f)
        if config.run_id != run_id:
            raise StoreError(_("weights file {path} holds run {other}, not {run_id}; the store was edited by "
                               "hand").format(path=path, other=config.run_id, run_id=run_id))
        return model

    # --- writing ------------------------------------------------------------------------------

    def claims(self, configs, *, budgets=None, budget: float | None = None, again: bool = False,
               asker: Asker | None = None) -> Claims:
        """Claim runs for this thread in one transaction: the one protocol of every trainer.

        Args:
            configs: the runs (a run's seeds, a sweep's group, the service's batch).
            budgets: one IsoFLOP budget per config (or `budget` for all).
            again: train every config anew as a new attempt beside its stored runs: the smallest
                attempt k >= config.attempt at which no config's run is finished or held by
                another live owner (a cancelled, failed or interrupted earlier retrain at k is
                trained again in place); `Claims.claimed` then holds the attempt-k configs.
            asker: who asked (recorded with each claimed run).

        Returns:
            A `Claims` (see there); use it as a context so that nothing stays claimed.
        """
        configs = list(configs)
        budgets = list(budgets) if budgets is not None else [budget] * len(configs)
        now = time.time()
        claimed, finished, busy = [], {}, []
        with self._tx() as con:
            if again:
                k = self._attempt_free(con, configs, now)
                configs = [c.replace(attempt=k) for c in configs]
            for c, b in zip(configs, budgets):
                row = con.execute("SELECT * FROM runs WHERE run_id = ?", (c.run_id,)).fetchone()
                status = self._claimable(row, now)
                if status == "claimed":
                    self._take(con, c, row, b, now, asker)
                    claimed.append(c)
                elif status == "finished":
                    finished[c.run_id] = self._record(row)
                else:
                    busy.append(c)
        if claimed:
            self._ensure_heartbeat()
        by_id = dict(zip((c.run_id for c in configs), budgets))
        return Claims(self, claimed, finished, busy, attempt=configs[0].attempt if again and configs else None,
                      budgets=[by_id[c.run_id] for c in claimed])

    def claim(self, config: RunConfig, *, budget: float | None = None) -> "Claims":
        """`claims([config])`: one run (the StoreTracker of a plain `train` call)."""
        return self.claims([config], budget=budget)

    def _attempt_free(self, con, configs, now: float) -> int:
        """The smallest attempt k (from the configs' own) at which every config can be claimed."""
        first = max(1, max(c.attempt for c in configs))
        for k in range(first, BY_PATH["attempt"].high + 1):
            rows = [con.execute("SELECT * FROM runs WHERE run_id = ?", (c.replace(attempt=k).run_id,)).fetchone()
                    for c in configs]
            queued = [con.execute("SELECT 1 FROM queue WHERE run_id = ?", (c.replace(attempt=k).run_id,)).fetchone()
                      for c in configs]
            if all(self._claimable(r, now) == "claimed" and not q for r, q in zip(rows, queued)):
                return k
        raise StoreError(_("run {run_id} has {n} attempts in the store already; delete some with "
                           "`scaling-lab runs --delete`").format(run_id=configs[0].run_id, n=BY_PATH["attempt"].high))

    @staticmethod
    def _claimable(row, now: float) -> str:
        """What a claim of this row gets: claimed, finished or busy (see `claims`)."""
        if row is None or (row["status"] == "running" and row["owner"] == owner_id()):
            return "claimed"   # absent, or already ours (the sweep claimed it before training; the tracker asks again)
        if row["status"] == "running" and owner_alive(row["owner"], row["heartbeat"], now):
            return "busy"
        if row["status"] in FINISHED:
            return "finished"
        return "claimed"

    @staticmethod
    def _take(con, config: RunConfig, row, budget, now: float, asker: Asker | None = None) -> None:
        """Write a claim decided by `_claimable` (inside its transaction)."""
        run_id, me = config.run_id, owner_id()
        who = (asker.client, asker.name, asker.role) if asker is not None else (None, None, None)
        if row is None:
            con.execute("INSERT INTO runs (run_id, shape_id, config, status, attempts, owner, heartbeat, budget, "
                        "created, started, asked_by, asked_name, asked_role) "
                        "VALUES (?, ?, ?, 'running', 1, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (run_id, config.shape_id, config.to_json(), me, now, budget, now, now, *who))
        elif not (row["status"] == "running" and row["owner"] == me):
            con.execute("DELETE FROM curves WHERE run_id = ?", (run_id,))
            con.execute("UPDATE runs SET status = 'running', attempts = attempts + 1, owner = ?, heartbeat = ?, "
                        "started = ?, finished = NULL, error = NULL, result = NULL, weights = 0, cancel = 0, "
                        "budget = coalesce(?, budget), asked_by = coalesce(asked_by, ?), "
                        "asked_name = coalesce(asked_name, ?), asked_role = coalesce(asked_role, ?) WHERE run_id = ?",
                        (me, now, now, budget, *who, run_id))

    def log(self, event: Event) -> None:
        """A curve point of a running run this thread owns, and a heartbeat."""
        self.log_point(event.run_id, event.metrics())

    def log_point(self, run_id: str, metrics: dict) -> None:
        """A curve point (`Event.metrics()`, with its step) of a running run this thread owns
        (the Ray service relays its tasks' points here)."""
        me = owner_id()
        with self._tx() as con:
            cur = con.execute("UPDATE runs SET heartbeat = ? WHERE run_id = ? AND owner = ? AND status = 'running'",
                              (time.time(), run_id, me))
            if cur.rowcount:
                con.execute("INSERT OR REPLACE INTO curves (run_id, step, metrics) VALUES (?, ?, ?)",
                            (run_id, int(metrics["step"]), _dumps(metrics)))

    def _write_weights(self, run_id: str, data: bytes) -> None:
        final = self.weights_path(run_id)
        fd, tmp = tempfile.mkstemp(prefix=f".{run_id}.", suffix=".tmp", dir=self.weights_dir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def commit(self, result: RunResult, *, weights: bytes | None = None, save_weights: bool = True,
               budget: float | None = None) -> None:
        """Store a finished run: weights first, then result, status and curve in one transaction.

        Args:
            result: from `train`/`train_seeds` (or rebuilt from a Ray task's payload).
            weights: a weights file's bytes; default: serialised from `result.model` when present.
            save_weights: False stores no weights (unless `weights` is given).
            budget: the IsoFLOP budget the run was planned for, if any.
        """
        run_id = check_run_id(result.run_id)
        if weights is None and save_weights and result.model is not None:
            from lab.weights import weights_bytes
            weights = weights_bytes(result.config, result.model)
        if weights is not None:
            self._write_weights(run_id, weights)
        payload = _dumps(result.to_dict())
        now = time.time()
        with self._tx() as con:
            # an upsert: the row may be absent (deleted meanwhile) and the result is complete anyway
            con.execute("INSERT INTO runs (run_id, shape_id, config, status, attempts, created, started) "
                        "VALUES (?, ?, ?, 'running', 1, ?, ?) ON CONFLICT(run_id) DO NOTHING",
                        (run_id, result.config.shape_id, result.config.to_json(), now, now))
            con.execute("UPDATE runs SET status = ?, result = ?, finished = ?, owner = NULL, heartbeat = NULL, "
                        "error = NULL, weights = ?, cancel = 0, budget = coalesce(?, budget) WHERE run_id = ?",
                        (result.status, payload, now, int(weights is not None), budget, run_id))
            con.execute("DELETE FROM curves WHERE run_id = ?", (run_id,))
            con.execute("DELETE FROM requests WHERE run_id = ?", (run_id,))      # served: nobody waits any more
            con.executemany("INSERT INTO curves (run_id, step, metrics) VALUES (?, ?, ?)",
                            [(run_id, int(p["step"]), _dumps(p)) for p in result.curve])

    def release(self, run_ids, *, status: str, error: str) -> None:
        """End this thread's claims without a result: `failed` (an exception; nobody waits for it
        any more) or `interrupted` (its pages may still wait: the service can queue it again)."""
        if status not in ("failed", "interrupted"):
            raise ValueError(f"release status must be failed or interrupted, got {status!r}")
        me, now = owner_id(), time.time()
        with self._tx() as con:
            for run_id in run_ids:
                held = con.execute("SELECT 1 FROM runs WHERE run_id = ? AND owner = ? AND status = 'running'",
                                   (run_id, me)).fetchone()
                if not held:
                    continue
                con.execute("DELETE FROM curves WHERE run_id = ?", (run_id,))
                con.execute("UPDATE runs SET status = ?, error = ?, finished = ?, owner = NULL, heartbeat = NULL "
                            "WHERE run_id = ?", (status, error[:4000], now, run_id))
                if status == "failed":
                    con.execute("DELETE FROM requests WHERE run_id = ?", (run_id,))

    def reap(self) -> list[str]:
        """Mark `running` rows whose owner is gone as `interrupted` (dropping their partial curves).
        Returns their run ids (the training service queues again those that pages still wait for)."""
        now, gone = time.time(), []
        with self._tx() as con:
            for row in con.execute("SELECT run_id, owner, heartbeat FROM runs WHERE status = 'running'").fetchall():
                if not owner_alive(row["owner"], row["heartbeat"], now):
                    gone.append(row["run_id"])
                    con.execute("DELETE FROM curves WHERE run_id = ?", (row["run_id"],))
                    con.execute("UPDATE runs SET status = 'interrupted', owner = NULL, heartbeat = NULL, error = ? "
                                "WHERE run_id = ?", (process_ended(row["owner"]), row["run_id"]))
        return gone

    def delete(self, run_ids, *, force: bool = False, asker: Asker | None = None) -> list[str]:
        """Delete runs (rows, curves, weights), all or none. Refuses runs another live process is
        training, unless `force`. With an `asker` (a page of the app), a student may delete only
        runs they asked for; the teacher, the command line and scripts (no asker) any run.
        Returns the ids deleted.

        Raises:
            StoreError: an id that is not a run id or not in the store, a run being trained, or a
                student's run of someone else (the message names who asked for it).
        """
        ids = [check_run_id(r) if len(str(r)) == 16 else self.resolve(r) for r in run_ids]
        with self._tx() as con:
            for run_id in ids:
                row = con.execute("SELECT owner, heartbeat, status, asked_by, asked_name, asked_role FROM runs "
                                  "WHERE run_id = ?", (run_id,)).fetchone()
                if row is None:
                    raise StoreError(_("no run {run_id} in the store {path}; list run ids with "
                                       "`scaling-lab runs --store {store}`").format(run_id=run_id,
                                                                                    path=repr(str(self.path)),
                                                                                    store=self.path))
                if (not force and row["status"] == "running" and row["owner"] != owner_id()
                        and owner_alive(row["owner"], row["heartbeat"])):
                    raise StoreError(_("run {run_id} is being trained by process {owner}; wait for it or stop "
                                       "it").format(run_id=run_id, owner=row["owner"]))
                if asker is not None and not asker.teacher and row["asked_by"] != asker.client:
                    who = (str(row["asked_name"] or _("another student")) if row["asked_role"] == "student"
                           else _("the teacher") if row["asked_role"] == "teacher" else
                           _("the class's server (prepared by the teacher)"))
                    raise StoreError(_("run {run_id} was asked for by {who}, so only they or the teacher can "
                                       "delete it; select only your own runs").format(run_id=run_id[:8], who=who))
                con.execute("DELETE FROM curves WHERE run_id = ?", (run_id,))
                con.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
        for run_id in ids:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.weights_path(run_id))
        return ids

    # --- training through the store -----------------------------------------------------------

    def wait(self, run_id: str, *, cancel=None, poll_s: float = 0.5, on_curve=None) -> RunRecord:
        """Wait while another process trains `run_id`; returns its record once it is no longer
        running (or at once when `cancel` is set: the record then still says `running`).

        Args:
            on_curve: called with the run's curve points (`curve_points`) whenever they grew, to
                follow the other process's run live (the app's second page).
        """
        seen = -1
        while True:
            rec = self.record(run_id)
            if on_curve is not None and rec is not None:
                points = self.curve_points(run_id)
                if len(points) != seen:
                    seen = len(points)
                    on_curve(points)
            if rec is None or rec.status != "running" or cancel_requested(cancel):
                return rec
            time.sleep(poll_s)

    def train(self, config: RunConfig, *, force: bool = False, trackers=(), cancel=None,
              budget: float | None = None) -> RunResult:
        """The run's result: the stored one when it already finished (done or diverged; no
        training), else trained now and committed. With `force`, trained again as a new attempt
        beside a finished run (the result's config carries the attempt). When another process is
        training it, waits for that process's result (the policy for a busy run: wait).

        A returned stored result has `model=None` (see `load_model`); a fresh one has the model.

        Raises:
            Exception: whatever training raised; the run is recorded `failed` with the message.
        """
        from lab.training import train
        while True:
            with self.claims([config], budget=budget, again=force) as held:
                if held.finished:
                    return self.get(config.run_id)
                if held.claimed:
                    result = train(held.claimed[0], trackers=[StoreTracker(self, budget=budget), *trackers],
                                   cancel=cancel)
                    held.claimed.clear()          # committed by the tracker
                    return result
            rec = self.wait(config.run_id, cancel=cancel)
            if rec is not None and rec.status in FINISHED:
                return self.get(config.run_id)
            if rec is not None and rec.status == "running":  # cancelled while waiting
                raise StoreError(_("cancelled while waiting for run {run_id}, which another process "
                                   "trains").format(run_id=config.run_id))


class StoreTracker(Tracker):
    """Records runs as they train: `start` claims the row (`running`), `log` adds curve points,
    `finish` commits the complete record and the weights.

    It never overwrites a finished run: callers claim first (`RunStore.claims`: the command line,
    sweeps, the training service) and train only what they must. Handed a run that is already
    finished, or that another live process holds, it leaves the row as it is and warns.
    """

    def __init__(self, store: RunStore, *, weights: bool = True, budget: float | None = None):
        self.store = store
        self.weights = weights
        self.budget = budget
        self._passive: set[str] = set()

    def start(self, config, info):
        held = self.store.claim(config, budget=self.budget)
        if held.busy:
            self._passive.add(config.run_id)
            warnings.warn(f"run {config.run_id} is being trained by another process; this run is not recorded",
                          stacklevel=2)
        elif held.finished:
            self._passive.add(config.run_id)
            warnings.warn(f"run {config.run_id} is already {held.finished[config.run_id].status} in the store, which "
                          "keeps it; this run is not recorded (claim a new attempt first: "
                          "RunStore.claims(..., again=True))", stacklevel=2)

    def log(self, event):
        if event.run_id not in self._passive:
            self.store.log(event)

    def finish(self, result):
        if result.run_id in self._passive:
            return
        self.store.commit(result, save_weights=self.weights, budget=self.budget)
