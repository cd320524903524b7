"""The run store: one SQLite database (WAL) for configs, status, results and loss curves; weights beside it.

One module, over the usual size, because its parts share one invariant and are only safe
together: a run's record is complete or absent.

- Commit: the weights file is written first (temp file, fsync, `os.replace`), then the
  result, the status and the whole curve go in ONE transaction. A run counts as finished
  only once that transaction has committed; a crash before it leaves a `running` row (or an
  orphan weights file that the retrain overwrites), never half a result.
- Claims: before training, a process claims the run in a `BEGIN IMMEDIATE` transaction
  (SQLite's single writer lock): the row is inserted or updated to `running` with the
  process and thread as owner and `attempts + 1`. Two claimants cannot both win one run; the
  second sees it `running` and waits for it (or follows it: the app), so nothing is trained
  twice or lost.
- Finished runs are kept: a retrain of a `done` or `diverged` run is a new attempt
  (`RunConfig.attempt`, its own run id, `claim_attempt`), stored beside it; so is a forced
  train or sweep (`scaling-lab train --force`, `scaling-lab sweep --force`). Nothing trains
  over a finished run.
- Interrupted runs: a `running` row whose owner is gone is interrupted and is claimed again
  on resume. The owner is `host|boot id:pid namespace|pid|process start time|thread`. On the
  same host the owner is alive iff that pid exists, is not a zombie, and started at that time
  (pid reuse, reboots and containers cannot fool it; in this process: iff that thread runs);
  no timeout is needed, so `kill -9` is noticed at once. For an owner on another host the
  heartbeat decides: a thread refreshes it every HEARTBEAT_S seconds while the process holds
  runs, and a row silent for LEASE_S is taken over.

Durability: WAL with `synchronous=NORMAL` survives any process crash (`kill -9`) without
losing a committed run; only a power loss could roll back the last commits, which are then
retrained, never seen half-written.

Keep a store on a local disk: SQLite's locks are not reliable on network file systems.
Clusters share results through one driver that writes the store (see `lab.sweep.RayExecutor`).

Layout of a store folder: `runs.sqlite` (+ `-wal`, `-shm`) and `weights/<run_id>.eqx`, each a
JSON header line (format, run id, config) followed by `eqx.tree_serialise_leaves` bytes.
"""

import contextlib
import dataclasses
import io
import json
import math
import os
import re
import socket
import sqlite3
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from lab.config import ConfigError, RunConfig
from lab.schema import BY_PATH
from lab.counting import flops_per_token, param_counts
from lab.family import family_key
from lab.trackers import Event, RunResult, Tracker, cancel_requested
from lab.jsonsafe import json_safe

SCHEMA_VERSION = 1
DB_NAME = "runs.sqlite"
WEIGHTS_DIR = "weights"
WEIGHTS_FORMAT = "scaling-lab/weights"
HEARTBEAT_S = 30.0      # how often a process refreshes the runs it holds
LEASE_S = 300.0         # silence after which a run held on another host counts as interrupted
BUSY_TIMEOUT_MS = 60_000  # wait this long for another process's write lock before failing
FINISHED = ("done", "diverged")   # terminal: not retrained unless forced
RUN_ID = re.compile(r"^[0-9a-f]{16}$")

SCHEMA = """
CREATE TABLE runs (
    run_id    TEXT PRIMARY KEY CHECK (length(run_id) = 16),
    shape_id  TEXT NOT NULL,
    config    TEXT NOT NULL,               -- canonical JSON of the RunConfig
    status    TEXT NOT NULL CHECK (status IN ('running','done','diverged','cancelled','failed','interrupted')),
    attempts  INTEGER NOT NULL DEFAULT 0,  -- times training started (claims)
    owner     TEXT,                        -- host|boot:pidns|pid|start|thread training it
    heartbeat REAL,                        -- unix time of the owner's last sign of life
    budget    REAL,                        -- IsoFLOP compute budget the run was planned for, if any
    created   REAL NOT NULL,
    started   REAL,
    finished  REAL,
    error     TEXT,                        -- failed / interrupted: why
    result    TEXT,                        -- JSON of RunResult.to_dict() without config and curve
    weights   INTEGER NOT NULL DEFAULT 0   -- 1 once weights/<run_id>.eqx was written
);
CREATE INDEX runs_status ON runs(status);
CREATE TABLE curves (
    run_id  TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    step    INTEGER NOT NULL,
    metrics TEXT NOT NULL,                 -- JSON of Event.metrics()
    PRIMARY KEY (run_id, step)
) WITHOUT ROWID;
"""


class StoreError(ConfigError):
    """A store problem a user can fix (unknown run id, newer schema, a path that is not a folder)."""


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
        raise StoreError(f"{run_id!r} is not a run id (16 hex digits, e.g. 3fa2c4e1b0d9a876); "
                         "list run ids with `scaling-lab runs`")
    return run_id


def when_words(t: float | None, now: float | None = None) -> str:
    """When a run finished, in words: 'today at 14:05 (3 min ago)', 'on 2025-03-02 at 09:10 (4 days ago)'."""
    if not t:
        return "at an unknown time"
    now = time.time() if now is None else now
    ago = max(0.0, now - t)
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if ago >= 1.5 * size or unit == "min" and ago >= 60:
            span = f"{ago / size:.0f} {unit}"
            break
    else:
        span = f"{ago:.0f} s"
    local = time.localtime(t)
    day = "today" if time.strftime("%Y%m%d", local) == time.strftime("%Y%m%d", time.localtime(now)) \
        else time.strftime("on %Y-%m-%d", local)
    return f"{day} at {time.strftime('%H:%M', local)} ({span} ago)"


# --- process identity and liveness ----------------------------------------------------------

def _machine() -> str:
    """Which pids this process can judge: boot id and pid namespace (a reboot or another
    container on the same host makes a pid mean something else)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()[:8]
        ns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return "-"
    return f"{boot}:{ns}"


def _proc_start(pid: int) -> str | None:
    """Start time of `pid` in clock ticks since boot ('Z' for a zombie), None when unknown."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return "Z" if fields[0] in ("Z", "X") else fields[19]


_ME: dict[int, str] = {}


def process_id() -> str:
    """This process: host|boot id:pid namespace|pid|start time (recomputed after a fork)."""
    pid = os.getpid()
    if pid not in _ME:
        _ME[pid] = f"{socket.gethostname()}|{_machine()}|{pid}|{_proc_start(pid) or '-'}"
    return _ME[pid]


def owner_id() -> str:
    """This thread of this process as the owner of a claim: process_id()|thread id. Threads
    of one process (a notebook's background trainers) are distinct owners."""
    return f"{process_id()}|{threading.get_ident()}"


def _pid_alive(pid: int, start: str) -> bool:
    current = _proc_start(pid)
    if current is not None:
        return current != "Z" and (start == "-" or current == start)
    try:                       # no /proc (macOS): existence only
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_alive(owner: str | None, heartbeat: float | None, now: float | None = None) -> bool:
    """Whether the process (and thread) named by `owner` may still be training (see the module doc)."""
    try:
        host, machine, pid_s, start, tid = (owner or "").split("|")
        pid = int(pid_s)
    except ValueError:
        return False
    me_host, me_machine, _, _ = process_id().split("|")
    if host == me_host and machine == me_machine:
        if f"{host}|{machine}|{pid}|{start}" == process_id():   # this process: is that thread still running?
            return any(str(t.ident) == tid for t in threading.enumerate())
        return _pid_alive(pid, start)                 # same host, boot and pid namespace: ask the kernel
    boot, me_boot = machine.split(":")[0], me_machine.split(":")[0]
    if host == me_host and boot != me_boot and "-" not in (boot, me_boot):
        return False                                  # this host rebooted since: the owner is gone
    return heartbeat is not None and (now or time.time()) - heartbeat < LEASE_S   # elsewhere: the lease


class _Heartbeat(threading.Thread):
    """Refreshes, every HEARTBEAT_S, the heartbeat of the runs this process holds in one store."""

    def __init__(self, db_path: Path):
        super().__init__(daemon=True, name=f"scaling-lab heartbeat {db_path}")
        self.db_path = db_path

    def run(self):
        while True:
            time.sleep(HEARTBEAT_S)
            try:
                con = _connect(self.db_path, create=False)
                me = process_id() + "|"
                con.execute("UPDATE runs SET heartbeat = ? WHERE substr(owner, 1, ?) = ? AND status = 'running'",
                            (time.time(), len(me), me))
                con.close()
            except sqlite3.Error:
                pass  # a busy or vanished store: try again at the next beat


_BEATS: dict[tuple[int, str], _Heartbeat] = {}
_BEATS_LOCK = threading.Lock()


def _connect(db_path: Path, *, create: bool = True) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit); `create=False` never
    recreates a store deleted meanwhile."""
    target = str(db_path) if create else Path(db_path).absolute().as_uri() + "?mode=rw"
    con = sqlite3.connect(target, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False,
                          uri=not create)
    con.row_factory = sqlite3.Row
    con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    con.execute("PRAGMA foreign_keys = ON")
    con.execute("PRAGMA synchronous = NORMAL")
    return con


def _busy(e: sqlite3.Error) -> bool:
    """SQLite's "database is locked / busy": another process holds the lock, nothing is wrong."""
    return getattr(e, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or \
        "locked" in str(e) or "busy" in str(e)


def _dumps(value) -> str:
    return json.dumps(json_safe(value), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _float(value) -> float:
    return math.nan if value is None else float(value)


def result_from_dict(d: dict, config: RunConfig, curve=()) -> RunResult:
    """Inverse of `RunResult.to_dict` (without the model): nulls back to NaN where a float belongs."""
    fields = {f.name for f in dataclasses.fields(RunResult)} - {"config", "curve", "model"}
    kw = {k: d.get(k) for k in fields}
    for k in ("train_loss", "eval_loss", "eval_bpb", "flops", "epochs", "wall_s", "first_step_s", "tokens_per_s",
              "unigram_loss"):
        kw[k] = _float(kw[k])
    return RunResult(config=config, curve=tuple(curve), **kw)


def weights_bytes(config: RunConfig, model) -> bytes:
    """A weights file: one JSON header line (format, run id, config), then the Equinox leaves."""
    import equinox as eqx
    buf = io.BytesIO()
    header = {"format": WEIGHTS_FORMAT, "version": 1, "run_id": config.run_id, "config": config.to_dict()}
    buf.write(json.dumps(header, sort_keys=True).encode() + b"\n")
    eqx.tree_serialise_leaves(buf, model)
    return buf.getvalue()


def read_weights(data: bytes | io.BufferedIOBase):
    """(config, model) from a weights file's bytes or an open binary file."""
    import equinox as eqx
    import jax.random as jr
    from lab.models import make_model
    f = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        header = json.loads(f.readline())
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != WEIGHTS_FORMAT:
        raise StoreError("not a scaling-lab weights file (its first line is not the JSON header)")
    config = RunConfig.from_dict(header["config"])
    like = eqx.filter_eval_shape(make_model, config.model, key=jr.PRNGKey(0))
    return config, eqx.tree_deserialise_leaves(f, like)


@dataclass(frozen=True)
class RunRecord:
    """One row of the store: a run in any state, with its result once it has one."""
    run_id: str
    config: RunConfig
    status: str                # running, done, diverged, cancelled, failed or interrupted
    attempts: int              # times training started
    error: str | None          # failed / interrupted: why
    budget: float | None       # IsoFLOP budget the run was planned for
    created: float
    started: float | None
    finished: float | None
    owner: str | None          # the process training it (status running)
    has_weights: bool
    result: RunResult | None   # done, diverged, cancelled

    def to_dict(self) -> dict:
        """Flat: status fields, the config's main knobs, and the result's numbers (null until trained)."""
        m, o = self.config.model, self.config.optim
        counts = param_counts(m)
        d = {"run_id": self.run_id, "status": self.status, "attempts": self.attempts, "attempt": self.config.attempt,
             "error": self.error,
             "budget": self.budget, "shape_id": self.config.shape_id, "arch": m.arch, "width": m.width,
             "depth": m.depth, "heads": m.heads, "context": m.context, "optimizer": o.name, "lr": o.lr,
             "schedule": o.schedule, "batch": self.config.batch, "seed": self.config.seed,
             "param": m.param, "tokens_per_param": self.config.tokens_per_param,
             "family": family_key(self.config),
             "data": self.config.data.source, "planned_tokens": self.config.tokens_trained,
             "params_total": counts.total, "params_embedding": counts.embedding,
             "params_non_embedding": counts.non_embedding, "flops_per_token": flops_per_token(m),
             "tokens": None, "flops": None, "train_loss": None, "eval_loss": None, "eval_bpb": None,
             "steps": None, "epochs": None, "wall_s": None, "first_step_s": None, "tokens_per_s": None,
             "device": None, "diverged_step": None, "stopped": None, "unigram_loss": None, "entropy_rate": None,
             "dataset": None, "created": self.created, "started": self.started, "finished": self.finished}
        if self.result is not None:
            r = self.result.to_dict()
            d.update({k: r[k] for k in d if k in r and k not in ("run_id", "status")})
        return json_safe(d)


@dataclass(frozen=True)
class Claim:
    """The answer to `RunStore.claim`: `claimed` (train it now), `finished` (stored) or `busy` (another owner)."""
    status: str
    record: RunRecord | None


COLUMNS = tuple(RunRecord(run_id="0" * 16, config=RunConfig(), status="done", attempts=0, error=None, budget=None,
                          created=0.0, started=None, finished=None, owner=None, has_weights=False,
                          result=None).to_dict())


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
            raise StoreError(f"store path {str(self.path)!r} is not a folder; pass a folder to --store") from None
        except PermissionError:
            raise StoreError(f"cannot create the store folder {str(self.path)!r} (permission denied); "
                             "pass a writable folder to --store or set $SCALING_LAB_STORE") from None
        self.weights_dir = self.path / WEIGHTS_DIR
        self._local = threading.local()
        self._migrate()

    def __repr__(self):
        return f"RunStore({str(self.path)!r})"

    # --- connections and transactions -------------------------------------------------------

    def _con(self) -> sqlite3.Connection:
        """One connection per thread and process (sqlite3 connections must not cross either)."""
        con = getattr(self._local, "con", None)
        if con is None or self._local.pid != os.getpid():
            try:
                con = _connect(self.db_path)
            except sqlite3.DatabaseError as e:
                raise StoreError(f"cannot open the run store {str(self.db_path)!r} ({e}); "
                                 "pass another --store folder") from None
            self._local.con, self._local.pid = con, os.getpid()
        return con

    @contextlib.contextmanager
    def _tx(self, write: bool = True):
        """A transaction; writers take SQLite's write lock at BEGIN (IMMEDIATE), so a
        read-decide-write sequence (a claim) cannot interleave with another process's."""
        con = self._con()
        con.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def _migrate(self) -> None:
        con = self._con()
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                if con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    con.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.DatabaseError as e:
                # Switching to WAL needs the database to itself; SQLite answers "locked" at once
                # (no busy wait) when another process opening the same new store holds it.
                if _busy(e) and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                if _busy(e):
                    raise StoreError(f"the run store {str(self.db_path)!r} stayed locked by another process for "
                                     f"{BUSY_TIMEOUT_MS // 1000} s ({e}); try again, or pass another --store folder"
                                     ) from None
                raise StoreError(f"{str(self.db_path)!r} is not a run store database ({e}); "
                                 "pass another --store folder") from None
        with self._tx() as con:
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"the run store {str(self.db_path)!r} has schema version {version}, newer than this "
                                 f"scaling-lab reads ({SCHEMA_VERSION}); upgrade scaling-lab or use another --store")
            if version == 0:
                if con.execute("SELECT count(*) FROM sqlite_master WHERE name = 'runs'").fetchone()[0]:
                    raise StoreError(f"{str(self.db_path)!r} holds a 'runs' table without a schema version; "
                                     "it was not written by scaling-lab; use another --store")
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        con.execute(statement)
                con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _ensure_heartbeat(self) -> None:
        key = (os.getpid(), str(self.db_path))
        with _BEATS_LOCK:
            if key not in _BEATS or not _BEATS[key].is_alive():
                _BEATS[key] = _Heartbeat(self.db_path)
                _BEATS[key].start()

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
                         has_weights=bool(row["weights"]), result=result)

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
            raise StoreError(f"{prefix!r} is not a run id (16 hex digits; a unique prefix of 4 or more works); "
                             f"list run ids with `scaling-lab runs --store {self.path}`")
        rows = self._con().execute("SELECT run_id FROM runs WHERE substr(run_id, 1, ?) = ?", (len(p), p)).fetchall()
        if len(rows) == 1:
            return rows[0][0]
        if not rows:
            raise StoreError(f"no run {prefix!r} in the store {str(self.path)!r}; list run ids with "
                             f"`scaling-lab runs --store {self.path}`")
        raise StoreError(f"{prefix!r} names {len(rows)} runs ({', '.join(r[0] for r in rows[:5])}); give more digits")

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
            raise StoreError(f"run {run_id} has no stored weights (status {rec.status}); train it again with "
                             "`scaling-lab train` (`--force` for a new attempt beside a finished run)")
        with open(path, "rb") as f:
            config, model = read_weights(f)
        if config.run_id != run_id:
            raise StoreError(f"weights file {path} holds run {config.run_id}, not {run_id}; "
                             "the store was edited by hand")
        return model

    # --- writing ------------------------------------------------------------------------------

    def claim(self, config: RunConfig, *, budget: float | None = None) -> Claim:
        """Take the run for this process, atomically.

        Returns `Claim('claimed')` when the caller must train it now (absent, interrupted,
        failed or cancelled), `Claim('finished')` with the stored record
        when it is done or diverged, `Claim('busy')` when another live process trains it.
        """
        now = time.time()
        with self._tx() as con:
            row = con.execute("SELECT * FROM runs WHERE run_id = ?", (config.run_id,)).fetchone()
            status = self._claimable(row, now)
            if status != "claimed":
                return Claim(status, self._record(row))
            self._take(con, config, row, budget, now)
        self._ensure_heartbeat()
        return Claim("claimed", None)

    @staticmethod
    def _claimable(row, now: float) -> str:
        """What a claim of this row gets: claimed, finished or busy (see `claim`)."""
        if row is None or (row["status"] == "running" and row["owner"] == owner_id()):
            return "claimed"   # absent, or already ours (the sweep claimed it before training; the tracker asks again)
        if row["status"] == "running" and owner_alive(row["owner"], row["heartbeat"], now):
            return "busy"
        if row["status"] in FINISHED:
            return "finished"
        return "claimed"

    @staticmethod
    def _take(con, config: RunConfig, row, budget, now: float) -> None:
        """Write a claim decided by `_claimable` (inside its transaction)."""
        run_id, me = config.run_id, owner_id()
        if row is None:
            con.execute("INSERT INTO runs (run_id, shape_id, config, status, attempts, owner, heartbeat, budget, "
                        "created, started) VALUES (?, ?, ?, 'running', 1, ?, ?, ?, ?, ?)",
                        (run_id, config.shape_id, config.to_json(), me, now, budget, now, now))
        elif not (row["status"] == "running" and row["owner"] == me):
            con.execute("DELETE FROM curves WHERE run_id = ?", (run_id,))
            con.execute("UPDATE runs SET status = 'running', attempts = attempts + 1, owner = ?, heartbeat = ?, "
                        "started = ?, finished = NULL, error = NULL, result = NULL, weights = 0, "
                        "budget = coalesce(?, budget) WHERE run_id = ?", (me, now, now, budget, run_id))

    def claim_attempt(self, configs, *, budget: float | None = None) -> int:
        """Claim a retrain of `configs` (a run's seeds) beside their stored runs, atomically: the
        smallest attempt k >= 1 at which no seed's run is finished or held by another live owner;
        each `config.replace(attempt=k)` is then claimed for this thread. A finished run is never
        touched; a cancelled, failed or interrupted earlier retrain at k is trained again in place.

        Returns:
            k: train `config.replace(attempt=k)` (a new run id per seed).
        """
        configs = list(configs)
        now = time.time()
        with self._tx() as con:
            for k in range(1, BY_PATH["attempt"].high + 1):
                tries = [c.replace(attempt=k) for c in configs]
                rows = [con.execute("SELECT * FROM runs WHERE run_id = ?", (c.run_id,)).fetchone() for c in tries]
                if all(self._claimable(r, now) == "claimed" for r in rows):
                    for c, r in zip(tries, rows):
                        self._take(con, c, r, budget, now)
                    break
            else:
                raise StoreError(f"run {configs[0].run_id} has {k} attempts in the store already; delete some with "
                                 f"`scaling-lab runs --delete`")
        self._ensure_heartbeat()
        return k

    def log(self, event: Event) -> None:
        """A curve point of a running run this process owns, and a heartbeat."""
        me = owner_id()
        with self._tx() as con:
            cur = con.execute("UPDATE runs SET heartbeat = ? WHERE run_id = ? AND owner = ? AND status = 'running'",
                              (time.time(), event.run_id, me))
            if cur.rowcount:
                con.execute("INSERT OR REPLACE INTO curves (run_id, step, metrics) VALUES (?, ?, ?)",
                            (event.run_id, event.step, _dumps(event.metrics())))

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
                        "error = NULL, weights = ?, budget = coalesce(?, budget) WHERE run_id = ?",
                        (result.status, payload, now, int(weights is not None), budget, run_id))
            con.execute("DELETE FROM curves WHERE run_id = ?", (run_id,))
            con.executemany("INSERT INTO curves (run_id, step, metrics) VALUES (?, ?, ?)",
                            [(run_id, int(p["step"]), _dumps(p)) for p in result.curve])

    def release(self, run_ids, *, status: str, error: str) -> None:
        """End this process's claims without a result: `failed` (an exception) or `interrupted`."""
        if status not in ("failed", "interrupted"):
            raise ValueError(f"release status must be failed or interrupted, got {status!r}")
        me, now = owner_id(), time.time()
        with self._tx() as con:
            for run_id in run_ids:
                con.execute("DELETE FROM curves WHERE run_id = ? AND EXISTS (SELECT 1 FROM runs WHERE run_id = ? "
                            "AND owner = ? AND status = 'running')", (run_id, run_id, me))
                con.execute("UPDATE runs SET status = ?, error = ?, finished = ?, owner = NULL, heartbeat = NULL "
                            "WHERE run_id = ? AND owner = ? AND status = 'running'",
                            (status, error[:4000], now, run_id, me))

    def reap(self) -> list[str]:
        """Mark `running` rows whose owner is gone as `interrupted` (dropping their partial curves)."""
        now, gone = time.time(), []
        with self._tx() as con:
            for row in con.execute("SELECT run_id, owner, heartbeat FROM runs WHERE status = 'running'").fetchall():
                if not owner_alive(row["owner"], row["heartbeat"], now):
                    gone.append(row["run_id"])
                    con.execute("DELETE FROM curves WHERE run_id = ?", (row["run_id"],))
                    con.execute("UPDATE runs SET status = 'interrupted', owner = NULL, heartbeat = NULL, error = ? "
                                "WHERE run_id = ?", (f"its process ({row['owner']}) ended before the run finished",
                                                     row["run_id"]))
        return gone

    def delete(self, run_ids, *, force: bool = False) -> list[str]:
        """Delete runs (rows, curves, weights). Refuses runs another live process is training,
        unless `force`. Returns the ids deleted.

        Raises:
            StoreError: an id that is not a run id or not in the store.
        """
        ids = [check_run_id(r) if len(str(r)) == 16 else self.resolve(r) for r in run_ids]
        with self._tx() as con:
            for run_id in ids:
                row = con.execute("SELECT owner, heartbeat, status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
                if row is None:
                    raise StoreError(f"no run {run_id} in the store {str(self.path)!r}; list run ids with "
                                     f"`scaling-lab runs --store {self.path}`")
                if (not force and row["status"] == "running" and row["owner"] != owner_id()
                        and owner_alive(row["owner"], row["heartbeat"])):
                    raise StoreError(f"run {run_id} is being trained by process {row['owner']}; wait for it or stop it")
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
        beside a finished run (`claim_attempt`; the result's config carries the attempt). When
        another process is training it, waits for that process's result.

        A returned stored result has `model=None` (see `load_model`); a fresh one has the model.

        Raises:
            Exception: whatever training raised; the run is recorded `failed` with the message.
        """
        from lab.training import train
        if force:
            config = config.replace(attempt=self.claim_attempt([config], budget=budget))
        while not force:
            claim = self.claim(config, budget=budget)
            if claim.status == "finished":
                return self.get(config.run_id)
            if claim.status == "claimed":
                break
            rec = self.wait(config.run_id, cancel=cancel)
            if rec is not None and rec.status in FINISHED:
                return self.get(config.run_id)
            if rec is not None and rec.status == "running":  # cancelled while waiting
                raise StoreError(f"cancelled while waiting for run {config.run_id}, which another process trains")
        try:
            return train(config, trackers=[StoreTracker(self, budget=budget), *trackers], cancel=cancel)
        except BaseException as e:
            status = "failed" if isinstance(e, Exception) else "interrupted"
            self.release([config.run_id], status=status, error=f"{type(e).__name__}: {e}")
            raise


class StoreTracker(Tracker):
    """Records runs as they train: `start` claims the row (`running`), `log` adds curve points,
    `finish` commits the complete record and the weights.

    It never overwrites a finished run: callers claim first (`claim`, `claim_attempt`: the app,
    `scaling-lab train`, the sweep) and train only what they must. Handed a run that is already
    finished, or that another live process holds, it leaves the row as it is and warns.
    """

    def __init__(self, store: RunStore, *, weights: bool = True, budget: float | None = None):
        self.store = store
        self.weights = weights
        self.budget = budget
        self._passive: set[str] = set()

    def start(self, config, info):
        claim = self.store.claim(config, budget=self.budget)
        if claim.status == "busy":
            self._passive.add(config.run_id)
            warnings.warn(f"run {config.run_id} is being trained by another process ({claim.record.owner}); "
                          "this run is not recorded", stacklevel=2)
        elif claim.status == "finished":
            self._passive.add(config.run_id)
            warnings.warn(f"run {config.run_id} is already {claim.record.status} in the store, which keeps it; this "
                          "run is not recorded (claim a new attempt first: RunStore.claim_attempt)", stacklevel=2)

    def log(self, event):
        if event.run_id not in self._passive:
            self.store.log(event)

    def finish(self, result):
        if result.run_id in self._passive:
            return
        self.store.commit(result, save_weights=self.weights, budget=self.budget)
