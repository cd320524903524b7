"""The queue of runs asked for: pages ask, the training service's workers take, in a fair order.

The queue lives in the run store's database (`lab.store`, schema 2), so that every page, worker
and command-line process sees one truth under SQLite's single writer lock:

- `queue`: runs asked for and not started yet (config, the batch they train in, when asked).
- `requests`: who waits for which run, queued or running: the page, its browser (`client`),
  a display name and a role. A config asked by many pages is one queue entry with many
  requests: it trains once and every asker follows it.
- `pages`: the open pages (their kernel process, for liveness, and the browser's last beat).
- `settings`: the teacher's limits and what the service says of itself (workers, device).
- `tasks`: small jobs for the service (text from a stored model), answered by a worker.

Fair order: round-robin by browser. Each browser's waiting runs are numbered 1, 2, 3 … in the
order it asked; the queue is ordered by that turn, then by when the run was first queued. A
visitor with many tabs counts once, and nobody's third run starts before everyone's first.

A worker takes the head of the queue and, with it, the other queued runs of its batch (the same
config but for the seed: they train together through `vmap`), up to its batch size; the claim
is the store's one protocol (`RunStore.claims`), so a run trains once whoever asks. Stop on a
page withdraws its request: a queued run nobody waits for leaves the queue, a running one is
flagged `cancel` and its worker stops it after the current chunk; while others wait, it goes on.
A worker that dies leaves its runs `running` under a dead owner: `reap` puts them back in the
queue while pages still wait for them (at most MAX_TRIES times), and drops the requests of
pages whose kernel is gone.
"""

import json
import time
from dataclasses import dataclass, field

from lab.config import RunConfig
from lab.i18n import N_, _
from lab.liveness import owner_alive, owner_id, process_id
from lab.schema import Say, kept
from lab.store import FINISHED, Asker, Claims, RunRecord, RunStore, StoreError, process_ended

MAX_TRIES = 3                 # a run whose worker died this many times is failed, not queued again
SERVICE_LEASE_S = 30.0        # a service that has not beaten for this long is gone
DEFAULT_LIMITS = {"max_queued": 3, "max_tokens": None, "max_pages": None}
LIMIT_HELP = {"max_queued": N_("runs a page may have waiting in the queue at once (the teacher has no limit)"),
              "max_tokens": N_("most training tokens of one run asked from a page (the teacher has no limit)"),
              "max_pages": N_("most pages open at once; the next visitor reads that the class is full")}

_FAIR = """
WITH turns AS (
    SELECT r.run_id, ROW_NUMBER() OVER (PARTITION BY r.client ORDER BY r.asked, r.run_id) AS turn
    FROM requests r JOIN queue q ON q.run_id = r.run_id)
SELECT q.run_id, q.config, q.batch, q.budget, q.queued, MIN(t.turn) AS turn
FROM queue q JOIN turns t ON t.run_id = q.run_id
GROUP BY q.run_id ORDER BY turn, q.queued, q.run_id
"""


class LimitError(StoreError):
    """A page asked for more than the teacher's limits allow."""


def batch_key(config: RunConfig) -> str:
    """Runs that train together in one vmapped program: equal in everything but the seed."""
    return config.replace(seed=0).run_id


@dataclass(frozen=True)
class Waiting:
    """A queued run in the fair order: its place (1 = next), config and who waits for it."""
    run_id: str
    config: RunConfig
    place: int
    queued: float
    askers: tuple[Asker, ...]
    budget: float | None = None


@dataclass(frozen=True)
class Training:
    """A run a worker is training now, with who waits for it and how far it got."""
    run_id: str
    config: RunConfig
    owner: str
    started: float
    askers: tuple[Asker, ...]
    step: int = 0                       # steps done (from its curve)
    tokens_per_s: float = 0.0           # its last chunk's throughput
    cancelling: bool = False            # nobody waits any more: it stops after its chunk


PAGE_LOADING_S = 60.0        # a page whose browser has not beaten yet counts as open this long after it opened


@dataclass(frozen=True)
class Page:
    """An open page of the app: its kernel process and the browser's last heartbeat."""
    page: str
    asker: Asker
    owner: str
    opened: float
    beat: float | None

    def present(self, now: float | None = None) -> bool:
        """A browser shows it (it has beaten), or it opened a moment ago and may still be loading; a
        kernel whose page was fetched without a browser (a link checker, curl) is not a page."""
        return self.beat is not None or (now or time.time()) - self.opened < PAGE_LOADING_S


@dataclass(frozen=True)
class QueueView:
    """The whole queue at one moment: what trains, what waits (in order), the open pages."""
    training: tuple[Training, ...]
    waiting: tuple[Waiting, ...]
    pages: tuple[Page, ...] = ()
    workers: int = 0                    # the service's workers (0: no service running)

    def place(self, run_id: str) -> int | None:
        return next((w.place for w in self.waiting if w.run_id == run_id), None)


@dataclass(frozen=True)
class Progress:
    """What a page follows, read at one moment (`RunQueue.progress`): each asked run's status as the
    store has it (`queued`, `running`, `gone` when neither queued nor stored, or a run status), the
    curve points past the steps already seen, and the whole queue (places, what trains)."""
    status: dict                       # run id -> status
    points: dict                       # run id -> [metrics dicts] new since the step given
    view: QueueView


@dataclass(frozen=True)
class Asked:
    """What `RunQueue.ask` did with each config: shown from the store (`stored`: finished runs),
    followed while another asker's run trains (`running`), or waiting in the queue (`queued`,
    run id -> place). `configs` are the configs asked (the attempt's when `again`)."""
    configs: tuple[RunConfig, ...]
    stored: dict = field(default_factory=dict)      # run id -> RunRecord
    running: tuple[str, ...] = ()
    queued: dict = field(default_factory=dict)      # run id -> place
    attempt: int | None = None
    joined: tuple[str, ...] = ()                    # runs another page had asked for first (running or queued)


def _config(text: str) -> RunConfig:
    return RunConfig.from_dict(json.loads(text))


def _asker(row) -> Asker:
    return Asker(client=row["client"], name=row["name"], role=row["role"], page=row["page"])


class RunQueue:
    """The queue of one run store (see the module doc). Safe to share between threads and processes."""

    def __init__(self, store: RunStore):
        self.store = store

    # --- settings and limits ------------------------------------------------------------------

    def setting(self, key: str, default=None):
        row = self.store._con().execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_setting(self, key: str, value) -> None:
        with self.store._tx() as con:
            con.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = "
                        "excluded.value", (key, json.dumps(value, sort_keys=True)))

    def limits(self) -> dict:
        """The teacher's limits: max_queued (per page), max_tokens (per run), max_pages (None: none)."""
        return {**DEFAULT_LIMITS, **(self.setting("limits", {}) or {})}

    def set_limits(self, **limits) -> dict:
        """Change limits (None lifts one). Raises StoreError for an unknown name or a bad value."""
        current = self.limits()
        for key, value in limits.items():
            if key not in DEFAULT_LIMITS:
                raise StoreError(_("unknown limit {name}; known: {known}").format(name=repr(key),
                                                                                  known=", ".join(DEFAULT_LIMITS)))
            if value is not None and (isinstance(value, bool) or not float(value) == int(value) or int(value) < 1):
                raise StoreError(_("the limit {name} must be a whole number of 1 or more (or none), got {value}").format(
                    name=key, value=repr(value)))
            current[key] = None if value is None else int(value)
        self.set_setting("limits", current)
        return current

    def service(self) -> dict | None:
        """What the running training service says of itself (workers, mode, device), or None when
        no live service beats for this store."""
        info = self.setting("service")
        if not info:
            return None
        alive = owner_alive(info.get("owner"), info.get("beat")) and time.time() - info.get("beat", 0) < \
            SERVICE_LEASE_S
        return info if alive else None

    # --- pages ----------------------------------------------------------------------------------

    def open_page(self, asker: Asker) -> None:
        """Register an open page (its kernel is this process)."""
        if not asker.page:
            raise StoreError("a page needs a page id")
        with self.store._tx() as con:
            con.execute("INSERT INTO pages (page, client, name, role, owner, opened, beat) VALUES (?, ?, ?, ?, ?, ?, "
                        "NULL) ON CONFLICT(page) DO UPDATE SET client = excluded.client, name = excluded.name, "
                        "role = excluded.role", (asker.page, asker.client, asker.name, asker.role, process_id(),
                                                 time.time()))

    def rename(self, asker: Asker) -> None:
        """A page's new display name (or browser id): its page row and its requests follow."""
        with self.store._tx() as con:
            con.execute("UPDATE pages SET client = ?, name = ?, role = ? WHERE page = ?",
                        (asker.client, asker.name, asker.role, asker.page))
            con.execute("UPDATE requests SET client = ?, name = ?, role = ? WHERE page = ?",
                        (asker.client, asker.name, asker.role, asker.page))

    def beat(self, page: str) -> None:
        with self.store._tx() as con:
            con.execute("UPDATE pages SET beat = ? WHERE page = ?", (time.time(), page))

    def close_page(self, page: str) -> dict:
        """The page is gone: withdraw its requests and forget it. Returns `withdraw`'s answer."""
        out = self.withdraw(None, page)
        with self.store._tx() as con:
            con.execute("DELETE FROM pages WHERE page = ?", (page,))
        return out

    def pages(self, *, present: bool = True) -> list[Page]:
        """Open pages whose kernel is alive, oldest first; with `present`, only those a browser shows
        (`Page.present`)."""
        rows = self.store._con().execute("SELECT * FROM pages ORDER BY opened, page").fetchall()
        now = time.time()
        out = [Page(page=r["page"], asker=Asker(client=r["client"], name=r["name"], role=r["role"], page=r["page"]),
                    owner=r["owner"], opened=r["opened"], beat=r["beat"])
               for r in rows if owner_alive(r["owner"], None)]
        return [p for p in out if p.present(now)] if present else out

    # --- asking and withdrawing -----------------------------------------------------------------

    def ask(self, configs, asker: Asker, *, budgets=None, again: bool = False) -> Asked:
        """Ask for runs (a run's seeds, or a part of a sweep) for a page, in one transaction.

        A run the store holds finished is answered from the store (`stored`); one a worker is
        training gets this page's request (`running`: follow it); any other is queued, or joins
        the queue entry another page made. `again` asks for a new attempt of every config beside
        its stored runs (never over them).

        Raises:
            LimitError: a student's run over the teacher's token limit, or more waiting runs than
                the page may have (`max_queued`); nothing is queued then.
        """
        configs = list(configs)
        budgets = list(budgets) if budgets is not None else [None] * len(configs)
        limits = self.limits()
        now = time.time()
        stored, running, queued, joined = {}, [], [], []
        with self.store._tx() as con:
            k = None
            if again:
                k = self.store._attempt_free(con, configs, now)
                configs = [c.replace(attempt=k) for c in configs]
            fresh = []
            for c, b in zip(configs, budgets):
                row = con.execute("SELECT * FROM runs WHERE run_id = ?", (c.run_id,)).fetchone()
                status = self.store._claimable(row, now)
                if status == "finished":
                    stored[c.run_id] = self.store._record(row)
                    continue
                if row is not None and row["status"] == "running" and owner_alive(row["owner"], row["heartbeat"], now):
                    running.append(c.run_id)
                    con.execute("UPDATE runs SET cancel = 0 WHERE run_id = ?", (c.run_id,))
                elif con.execute("SELECT 1 FROM queue WHERE run_id = ?", (c.run_id,)).fetchone():
                    queued.append(c.run_id)
                    if con.execute("SELECT 1 FROM requests WHERE run_id = ? AND page != ?",
                                   (c.run_id, asker.page)).fetchone():
                        joined.append(c.run_id)
                else:
                    fresh.append((c, b))
                    queued.append(c.run_id)
            if not asker.teacher:
                over = [c for c, _b in fresh if limits["max_tokens"] and c.tokens_trained > limits["max_tokens"]]
                if over:
                    raise LimitError(_("this run trains on {tokens} tokens, over the class's limit of {limit} tokens "
                                       "per run that the teacher set; lower {data} or {per_param}, or a smaller "
                                       "model").format(tokens=f"{over[0].tokens_trained:,}",
                                                       limit=f"{limits['max_tokens']:,}", data=_("Data (tokens)"),
                                                       per_param=_("Tokens per parameter")))
                waiting = con.execute("SELECT count(*) FROM requests r JOIN queue q ON q.run_id = r.run_id "
                                      "WHERE r.page = ?", (asker.page,)).fetchone()[0]
                new = [r for r in queued if not con.execute("SELECT 1 FROM requests WHERE run_id = ? AND page = ?",
                                                           (r, asker.page)).fetchone()]
                if limits["max_queued"] and waiting + len(new) > limits["max_queued"]:
                    raise LimitError(_("a page may have {limit} run(s) waiting in the queue at once and this one has "
                                       "{waiting}; asking for {n} more is too many. Wait for your runs to start, or "
                                       "ask for fewer seeds").format(limit=limits["max_queued"], waiting=waiting,
                                                                     n=len(new)))
            for c, b in fresh:
                con.execute("INSERT INTO queue (run_id, config, batch, budget, queued) VALUES (?, ?, ?, ?, ?)",
                            (c.run_id, c.to_json(), batch_key(c), b, now))
            for i, run_id in enumerate(running + queued):     # distinct times keep the order asked
                con.execute("INSERT INTO requests (run_id, page, client, name, role, asked) VALUES (?, ?, ?, ?, ?, ?) "
                            "ON CONFLICT(run_id, page) DO NOTHING",
                            (run_id, asker.page, asker.client, asker.name, asker.role, now + i * 1e-6))
            order = [r["run_id"] for r in con.execute(_FAIR).fetchall()]
        places = {r: order.index(r) + 1 for r in queued if r in order}
        return Asked(configs=tuple(configs), stored=stored, running=tuple(running), queued=places, attempt=k,
                     joined=tuple(running) + tuple(joined))

    def withdraw(self, run_ids, page: str) -> dict:
        """A page stops waiting for `run_ids` (None: all of its runs). Each answer is `dropped` (it
        left the queue: nobody else waited), `cancelling` (nobody else waits: its worker stops it
        after the current chunk), `others` (other pages still wait: it goes on) or `ended`."""
        out = {}
        with self.store._tx() as con:
            if run_ids is None:
                run_ids = [r[0] for r in con.execute("SELECT run_id FROM requests WHERE page = ?", (page,))]
            for run_id in run_ids:
                con.execute("DELETE FROM requests WHERE run_id = ? AND page = ?", (run_id, page))
                if con.execute("SELECT 1 FROM requests WHERE run_id = ?", (run_id,)).fetchone():
                    out[run_id] = "others"
                elif con.execute("DELETE FROM queue WHERE run_id = ?", (run_id,)).rowcount:
                    out[run_id] = "dropped"
                elif con.execute("UPDATE runs SET cancel = 1 WHERE run_id = ? AND status = 'running'",
                                 (run_id,)).rowcount:
                    out[run_id] = "cancelling"
                else:
                    out[run_id] = "ended"
        return out

    def clear(self) -> int:
        """The teacher empties the queue: every waiting run leaves it (running ones go on).
        Returns how many left."""
        with self.store._tx() as con:
            ids = [r[0] for r in con.execute("SELECT run_id FROM queue")]
            for run_id in ids:
                con.execute("DELETE FROM requests WHERE run_id = ?", (run_id,))
            con.execute("DELETE FROM queue")
        return len(ids)

    # --- reading --------------------------------------------------------------------------------

    def view(self) -> QueueView:
        """What trains, what waits (in the fair order, with places), and the open pages."""
        with self.store._tx(write=False) as con:
            askers: dict[str, list] = {}
            for r in con.execute("SELECT * FROM requests ORDER BY asked, page"):
                askers.setdefault(r["run_id"], []).append(_asker(r))
            waiting = tuple(Waiting(run_id=r["run_id"], config=_config(r["config"]), place=i + 1,
                                    queued=r["queued"], askers=tuple(askers.get(r["run_id"], ())), budget=r["budget"])
                            for i, r in enumerate(con.execute(_FAIR).fetchall()))
            training = []
            for r in con.execute("SELECT run_id, config, owner, heartbeat, started, cancel FROM runs "
                                 "WHERE status = 'running' ORDER BY started, run_id").fetchall():
                if not owner_alive(r["owner"], r["heartbeat"]):
                    continue
                last = con.execute("SELECT metrics FROM curves WHERE run_id = ? ORDER BY step DESC LIMIT 1",
                                   (r["run_id"],)).fetchone()
                m = json.loads(last[0]) if last else {}
                training.append(Training(run_id=r["run_id"], config=_config(r["config"]), owner=r["owner"],
                                         started=r["started"] or 0.0, askers=tuple(askers.get(r["run_id"], ())),
                                         step=int(m.get("step", 0)),
                                         tokens_per_s=float(m.get("throughput/tokens_per_s") or 0.0),
                                         cancelling=bool(r["cancel"])))
        service = self.service()
        return QueueView(training=tuple(training), waiting=waiting, pages=tuple(self.pages()),
                         workers=int(service.get("workers", 0)) if service else 0)

    def progress(self, run_ids, since: dict | None = None) -> Progress:
        """The state of `run_ids` for a page following them (see `Progress`): one read of the store."""
        since = since or {}
        status, points = {}, {}
        with self.store._tx(write=False) as con:
            queued = {r[0] for r in con.execute("SELECT run_id FROM queue")}
            for run_id in run_ids:
                row = con.execute("SELECT status, owner, heartbeat FROM runs WHERE run_id = ?", (run_id,)).fetchone()
                if run_id in queued and (row is None or row["status"] != "running"):
                    status[run_id] = "queued"
                elif row is None:
                    status[run_id] = "gone"
                elif row["status"] == "running" and not owner_alive(row["owner"], row["heartbeat"]):
                    asked = con.execute("SELECT 1 FROM requests WHERE run_id = ?", (run_id,)).fetchone()
                    status[run_id] = "queued" if asked else "interrupted"   # its worker died: the service requeues it
                else:
                    status[run_id] = row["status"]
                if status[run_id] == "running":
                    rows = con.execute("SELECT metrics FROM curves WHERE run_id = ? AND step > ? ORDER BY step",
                                       (run_id, int(since.get(run_id, -1)))).fetchall()
                    points[run_id] = [json.loads(r[0]) for r in rows]
        return Progress(status=status, points=points, view=self.view())

    def requested(self, page: str) -> list[str]:
        """The runs a page waits for (queued or running)."""
        return [r[0] for r in self.store._con().execute("SELECT run_id FROM requests WHERE page = ? ORDER BY asked",
                                                       (page,))]

    # --- the service's side -----------------------------------------------------------------

    def claim_next(self, max_batch: int = 1) -> Claims | None:
        """Take the head of the queue, with the queued runs of its batch (up to `max_batch`), for
        this thread: a `Claims` of what to train now, or None when the queue is empty. Runs found
        finished meanwhile leave the queue (their pages see them finished); runs another process
        trains leave it too (their pages follow that run); a run over the teacher's token limit
        that no teacher asked for is refused: stored `failed` with the reason."""
        now = time.time()
        limits = self.limits()
        with self.store._tx() as con:
            rows = con.execute(_FAIR).fetchall()
            if not rows:
                return None
            head = rows[0]["batch"]
            batch = [r for r in rows if r["batch"] == head][:max(1, int(max_batch))]
            claimed, budgets, finished = [], [], {}
            for r in batch:
                config = _config(r["config"])
                con.execute("DELETE FROM queue WHERE run_id = ?", (r["run_id"],))
                asks = [_asker(a) for a in con.execute("SELECT * FROM requests WHERE run_id = ? ORDER BY asked",
                                                       (r["run_id"],))]
                if (limits["max_tokens"] and config.tokens_trained > limits["max_tokens"]
                        and not any(a.teacher for a in asks)):
                    self._refuse(con, config, kept(Say(N_("refused by the training service: {tokens} tokens is over the "
                                                          "class's limit of {limit} per run"),
                                                       tokens=f"{config.tokens_trained:,}",
                                                       limit=f"{limits['max_tokens']:,}")),
                                 asks[0] if asks else None, now)
                    continue
                row = con.execute("SELECT * FROM runs WHERE run_id = ?", (r["run_id"],)).fetchone()
                status = self.store._claimable(row, now)
                if status == "finished":
                    finished[config.run_id] = self.store._record(row)
                    con.execute("DELETE FROM requests WHERE run_id = ?", (r["run_id"],))
                elif status == "claimed":
                    self.store._take(con, config, row, r["budget"], now, asks[0] if asks else None)
                    claimed.append(config)
                    budgets.append(r["budget"])
        if claimed:
            self.store._ensure_heartbeat()
        return Claims(self.store, claimed, finished, [], budgets=budgets)

    @staticmethod
    def _refuse(con, config: RunConfig, why: str, asker: Asker | None, now: float) -> None:
        who = (asker.client, asker.name, asker.role) if asker else (None, None, None)
        con.execute("INSERT INTO runs (run_id, shape_id, config, status, attempts, created, finished, error, "
                    "asked_by, asked_name, asked_role) VALUES (?, ?, ?, 'failed', 0, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(run_id) DO UPDATE SET status = 'failed', error = excluded.error, "
                    "finished = excluded.finished WHERE status NOT IN ('done', 'diverged', 'running')",
                    (config.run_id, config.shape_id, config.to_json(), now, now, why, *who))
        con.execute("DELETE FROM requests WHERE run_id = ?", (config.run_id,))

    def cancelled(self, run_ids) -> bool:
        """Whether nobody waits for any of `run_ids` any more (all flagged `cancel`): stop them."""
        ids = list(run_ids)
        if not ids:
            return False
        marks = ",".join("?" * len(ids))
        left = self.store._con().execute(f"SELECT count(*) FROM runs WHERE run_id IN ({marks}) AND cancel = 0 "
                                         "AND status = 'running'", ids).fetchone()[0]
        return left == 0

    def requeue(self, run_ids, *, why: str = kept(Say(N_("its worker stopped")))) -> list[str]:
        """Give runs this thread holds back to the queue (a worker that stops, a service shut
        down): their partial curves go, their requests stay, they keep their turn. Runs nobody
        waits for are marked interrupted instead. `why` is kept as `lab.schema.kept` writes it.
        Returns the ids queued again."""
        me, now, back = owner_id(), time.time(), []
        with self.store._tx() as con:
            for run_id in run_ids:
                row = con.execute("SELECT * FROM runs WHERE run_id = ? AND owner = ? AND status = 'running'",
                                  (run_id, me)).fetchone()
                if row is None:
                    continue
                if self._back_in_queue(con, row, why, now):
                    back.append(run_id)
        return back

    @staticmethod
    def _back_in_queue(con, row, why: str, now: float) -> bool:
        run_id = row["run_id"]
        con.execute("DELETE FROM curves WHERE run_id = ?", (run_id,))
        con.execute("UPDATE runs SET status = 'interrupted', owner = NULL, heartbeat = NULL, cancel = 0, error = ?, "
                    "finished = ? WHERE run_id = ?", (why, now, run_id))
        first = con.execute("SELECT min(asked) FROM requests WHERE run_id = ?", (run_id,)).fetchone()[0]
        if first is None or row["cancel"]:
            con.execute("DELETE FROM requests WHERE run_id = ?", (run_id,))
            return False
        config = _config(row["config"])
        con.execute("INSERT INTO queue (run_id, config, batch, budget, queued) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT(run_id) DO NOTHING", (run_id, row["config"], batch_key(config), row["budget"], first))
        return True

    def reap(self) -> dict:
        """The service's housekeeping: runs whose worker died go back to the queue while pages wait
        for them (failed after MAX_TRIES tries), requests of pages whose kernel is gone are
        withdrawn, tasks of dead workers are handed out again. Returns what it did, by kind."""
        now = time.time()
        out = {"requeued": [], "failed": [], "pages_gone": [], "tasks": 0}
        with self.store._tx() as con:
            for row in con.execute("SELECT * FROM runs WHERE status = 'running'").fetchall():
                if owner_alive(row["owner"], row["heartbeat"], now):
                    continue
                asked = con.execute("SELECT 1 FROM requests WHERE run_id = ?", (row["run_id"],)).fetchone()
                if asked and row["attempts"] >= MAX_TRIES:
                    con.execute("DELETE FROM curves WHERE run_id = ?", (row["run_id"],))
                    con.execute("UPDATE runs SET status = 'failed', owner = NULL, heartbeat = NULL, finished = ?, "
                                "error = ? WHERE run_id = ?",
                                (now, kept(Say(N_("its worker died {n} times while training it (out of memory?); "
                                                  "not queued again"), n=row["attempts"])), row["run_id"]))
                    con.execute("DELETE FROM requests WHERE run_id = ?", (row["run_id"],))
                    out["failed"].append(row["run_id"])
                elif asked:
                    if self._back_in_queue(con, row, kept(Say(N_("its worker ({worker}) died; queued again"),
                                                              worker=row["owner"])), now):
                        out["requeued"].append(row["run_id"])
                else:
                    con.execute("DELETE FROM curves WHERE run_id = ?", (row["run_id"],))
                    con.execute("UPDATE runs SET status = 'interrupted', owner = NULL, heartbeat = NULL, error = ? "
                                "WHERE run_id = ?", (process_ended(row["owner"]), row["run_id"]))
            for row in con.execute("SELECT page, owner FROM pages").fetchall():
                if not owner_alive(row["owner"], None):
                    out["pages_gone"].append(row["page"])
                    con.execute("DELETE FROM pages WHERE page = ?", (row["page"],))
            for row in con.execute("SELECT id, owner FROM tasks WHERE status = 'running'").fetchall():
                if not owner_alive(row["owner"], None):
                    con.execute("UPDATE tasks SET status = 'waiting', owner = NULL WHERE id = ?", (row["id"],))
                    out["tasks"] += 1
        for page in out["pages_gone"]:
            self.withdraw(None, page)
        with self.store._tx() as con:       # requests of pages that never registered and whose runs ended
            con.execute("DELETE FROM requests WHERE run_id NOT IN (SELECT run_id FROM queue) AND run_id NOT IN "
                        "(SELECT run_id FROM runs WHERE status = 'running')")
            con.execute("DELETE FROM queue WHERE run_id NOT IN (SELECT run_id FROM requests)")
        return out

    # --- tasks ------------------------------------------------------------------------------------

    def submit(self, kind: str, args: dict, page: str = "") -> int:
        """A small job for the service (kind "sample"); returns its id (see `task`)."""
        with self.store._tx() as con:
            cur = con.execute("INSERT INTO tasks (kind, args, page, status, created) VALUES (?, ?, ?, 'waiting', ?)",
                              (kind, json.dumps(args), page, time.time()))
            return int(cur.lastrowid)

    def task(self, task_id: int) -> dict:
        """{"status": waiting|running|done|failed, "result": ... | None, "error": ...}; forgotten once read
        finished."""
        row = self.store._con().execute("SELECT status, result FROM tasks WHERE id = ?", (task_id,)).fetchone()
        if row is None:
            raise StoreError(f"no task {task_id} in the store")
        out = {"status": row["status"], **(json.loads(row["result"]) if row["result"] else {})}
        if row["status"] in ("done", "failed"):
            with self.store._tx() as con:
                con.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
        return out

    def take_task(self) -> tuple[int, str, dict] | None:
        with self.store._tx() as con:
            row = con.execute("SELECT id, kind, args FROM tasks WHERE status = 'waiting' ORDER BY id LIMIT 1").fetchone()
            if row is None:
                return None
            con.execute("UPDATE tasks SET status = 'running', owner = ? WHERE id = ?", (owner_id(), row["id"]))
        return row["id"], row["kind"], json.loads(row["args"])

    def finish_task(self, task_id: int, *, result=None, error: str | None = None) -> None:
        payload = {"result": result} if error is None else {"error": error}
        with self.store._tx() as con:
            con.execute("UPDATE tasks SET status = ?, result = ?, owner = NULL WHERE id = ?",
                        ("done" if error is None else "failed", json.dumps(payload), task_id))


def starts(view: QueueView, seconds, workers: int | None = None) -> dict[str, float]:
    """When each waiting run should start, in seconds from now: the workers take the queue in its
    order as each frees up; `seconds(config)` is a run's training time (`lab.estimate.run_seconds`)
    and a training run has the rest of its own left. Batches trained together are ignored (an
    upper bound)."""
    n = max(1, workers if workers is not None else (view.workers or 1))
    busy = [max(0.0, seconds(t.config) * (1 - t.step / max(t.config.steps, 1))) for t in view.training]
    free = sorted(busy + [0.0] * max(0, n - len(busy)))[:n]
    out = {}
    for w in view.waiting:
        t0 = free.pop(0)
        out[w.run_id] = t0
        free.append(t0 + seconds(w.config))
        free.sort()
    return out


def records_of(store: RunStore, run_ids) -> dict[str, RunRecord]:
    """The store's records of `run_ids` that exist (one read each)."""
    out = {}
    for run_id in run_ids:
        rec = store.record(run_id)
        if rec is not None:
            out[run_id] = rec
    return out


__all__ = ["RunQueue", "Asked", "Asker", "LimitError", "Page", "Progress", "QueueView", "Training", "Waiting",
           "batch_key", "starts",
           "FINISHED", "MAX_TRIES", "DEFAULT_LIMITS", "LIMIT_HELP", "records_of"]
