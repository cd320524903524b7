"""The run store's database file: its tables by schema version, connections, transactions, upgrades.

`lab.store` reads and writes runs through these; `lab.runqueue` adds the queue's rows to the
same tables. Opening a store (`upgrade`) turns WAL on, creates the tables of a new store,
upgrades a schema-1 store in place, and refuses a newer or a foreign database.
"""

import contextlib
import sqlite3
import time
from pathlib import Path

from lab.config import ConfigError

SCHEMA_VERSION = 2
DB_NAME = "runs.sqlite"
BUSY_TIMEOUT_MS = 60_000  # wait this long for another process's write lock before failing


class StoreError(ConfigError):
    """A store problem a user can fix (unknown run id, newer schema, a path that is not a folder)."""


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

# Schema 2: the training service's queue (lab.runqueue) and who asked for each run.
SCHEMA_2 = """
ALTER TABLE runs ADD COLUMN asked_by TEXT;            -- the asker's browser id (NULL: command line, scripts)
ALTER TABLE runs ADD COLUMN asked_name TEXT;          -- their display name
ALTER TABLE runs ADD COLUMN asked_role TEXT;          -- student or teacher
ALTER TABLE runs ADD COLUMN cancel INTEGER NOT NULL DEFAULT 0;   -- 1: nobody waits for it any more, stop it
CREATE TABLE queue (                                  -- runs asked for, not started yet
    run_id   TEXT PRIMARY KEY CHECK (length(run_id) = 16),
    config   TEXT NOT NULL,
    batch    TEXT NOT NULL,                           -- runs equal but for their seed train together (vmap)
    budget   REAL,
    queued   REAL NOT NULL                            -- first asked (a requeued run keeps its place)
);
CREATE TABLE requests (                               -- who waits for which run (queued or running)
    run_id   TEXT NOT NULL,
    page     TEXT NOT NULL,                           -- the asking page
    client   TEXT NOT NULL,                           -- its browser (pages of one browser share it)
    name     TEXT NOT NULL,
    role     TEXT NOT NULL CHECK (role IN ('student','teacher')),
    asked    REAL NOT NULL,
    PRIMARY KEY (run_id, page)
) WITHOUT ROWID;
CREATE INDEX requests_page ON requests(page);
CREATE TABLE pages (                                  -- open pages of the app
    page     TEXT PRIMARY KEY,
    client   TEXT NOT NULL,
    name     TEXT NOT NULL,
    role     TEXT NOT NULL,
    owner    TEXT NOT NULL,                           -- the page's kernel process (lab.liveness)
    opened   REAL NOT NULL,
    beat     REAL                                     -- the browser's last heartbeat (NULL: none yet)
) WITHOUT ROWID;
CREATE TABLE settings (                               -- limits, and what the training service says of itself
    key      TEXT PRIMARY KEY,
    value    TEXT NOT NULL                            -- JSON
) WITHOUT ROWID;
CREATE TABLE tasks (                                  -- small jobs for the service (text samples)
    id       INTEGER PRIMARY KEY,
    kind     TEXT NOT NULL,
    args     TEXT NOT NULL,                           -- JSON
    page     TEXT,
    status   TEXT NOT NULL CHECK (status IN ('waiting','running','done','failed')),
    owner    TEXT,
    result   TEXT,                                    -- JSON
    created  REAL NOT NULL
);
"""


def connect(db_path: Path, *, create: bool = True) -> sqlite3.Connection:
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


def _script(con: sqlite3.Connection, script: str) -> None:
    """Run `;`-separated statements inside the caller's transaction (executescript would commit)."""
    for statement in script.split(";"):
        if statement.strip():
            con.execute(statement)


def busy(e: sqlite3.Error) -> bool:
    """SQLite's "database is locked / busy": another process holds the lock, nothing is wrong."""
    return getattr(e, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or \
        "locked" in str(e) or "busy" in str(e)


@contextlib.contextmanager
def transaction(con: sqlite3.Connection, write: bool = True):
    """A transaction; writers take SQLite's write lock at BEGIN (IMMEDIATE), so a
    read-decide-write sequence (a claim) cannot interleave with another process's."""
    con.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def upgrade(con: sqlite3.Connection, db_path: Path) -> None:
    """Open the database at `db_path` (on `con`) as a run store: WAL on, the tables of
    `SCHEMA_VERSION` created, or added to a schema-1 store.

    Raises:
        StoreError: the database is locked too long, is not a run store, or is newer than this code.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                con.execute("PRAGMA journal_mode = WAL")
            break
        except sqlite3.DatabaseError as e:
            # Switching to WAL needs the database to itself; SQLite answers "locked" at once
            # (no busy wait) when another process opening the same new store holds it.
            if busy(e) and time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            if busy(e):
                raise StoreError(f"the run store {str(db_path)!r} stayed locked by another process for "
                                 f"{BUSY_TIMEOUT_MS // 1000} s ({e}); try again, or pass another --store folder"
                                 ) from None
            raise StoreError(f"{str(db_path)!r} is not a run store database ({e}); "
                             "pass another --store folder") from None
    with transaction(con):
        version = con.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"the run store {str(db_path)!r} has schema version {version}, newer than this "
                             f"scaling-lab reads ({SCHEMA_VERSION}); upgrade scaling-lab or use another --store")
        if version == 0:
            if con.execute("SELECT count(*) FROM sqlite_master WHERE name = 'runs'").fetchone()[0]:
                raise StoreError(f"{str(db_path)!r} holds a 'runs' table without a schema version; "
                                 "it was not written by scaling-lab; use another --store")
            _script(con, SCHEMA)
        if version < 2:
            _script(con, SCHEMA_2)
        if version < SCHEMA_VERSION:
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
