"""What every action of a page shares: the state, the run store and its queue, who this page is,
what the training service says of its device, and the error area.

A page never trains and never imports JAX: it asks the queue (`lab.runqueue`) and follows the
store. Its `Session` is passed to each tab's actions (`widgets.form`, `widgets.jobs`,
`widgets.scaling`, `widgets.runs`, `widgets.classroom`): one object holding the shared things,
and small classes that hold one tab's logic each.

Who a page is: a page id (this kernel's page), the browser's id (`client`, sent by the page's
heartbeat widget and kept in the browser, so a student's tabs and reloads are one person), the
display name the student typed, and a role: `teacher` when the link carries the server's
teacher token (`scaling-lab app` prints that link), else `student`. A lab without a teacher
token (a notebook in JupyterLab) belongs to its user: the teacher role.
"""

import hashlib
import hmac
import os
import secrets
import time
import traceback
import weakref

from lab.config import ConfigError
from lab.estimate import Speed, guess
from lab.i18n import _
from widgets.state import AppState
from widgets.text import in_words, run_label

SPEED_S = 10.0        # how long the service's device facts are trusted before they are read again
TEACHER_ENV = "SCALING_LAB_TEACHER_SHA256"


def teacher_token_hash() -> str | None:
    """The sha256 of the server's teacher token (set by `scaling-lab app`), None without one."""
    return os.environ.get(TEACHER_ENV) or None


def role_for(token: str | None) -> tuple[str, str]:
    """(role, words) for a link's `teacher=` token: the teacher when it matches the server's, else a
    student (and why, when a token was given but is wrong)."""
    expected = teacher_token_hash()
    if expected is None:
        return "teacher", ""
    if not token:
        return "student", ""
    given = hashlib.sha256(token.encode()).hexdigest()
    if hmac.compare_digest(given, expected):
        return "teacher", _("teacher mode: you can delete any run, clear the queue and set the class's limits")
    return "student", _("the teacher token in this link is wrong, so this page is in student mode; ask your teacher "
                        "for the link that `scaling-lab app` printed")


class Session:
    """The page's shared parts (see the module doc).

    Args:
        state: the state every view observes.
        store: a `lab.store.RunStore`, or None for the default store ($SCALING_LAB_STORE).
        service: how runs get trained: "auto" (a running training service, else one started now as
            a process of its own), "thread" (an in-process one: tests and scripts; loads JAX here),
            or "external" (a service someone else runs: `scaling-lab app`; never start one).
    """

    def __init__(self, state: AppState, store=None, *, service: str | None = None):
        if service is None:
            service = os.environ.get("SCALING_LAB_SERVICE", "auto")
        if service not in ("auto", "thread", "external"):
            raise ConfigError(f"service must be auto, thread or external, got {service!r}")
        self.state = state
        self._store = store
        self._queue = None
        self.service_mode = service
        self.page = secrets.token_hex(8)
        self.client = self.page                 # until the page's browser says who it is
        self.role, _words = role_for(None)
        self.records: dict = {}                 # run id -> lab.store.RunRecord (fits read results)
        self._curves: dict[str, tuple] = {}     # finished runs' curves (they never change)
        self._speed: Speed | None = None
        self._speed_at = 0.0
        self._own_service = None
        self.on_runs: list = []                 # called after the runs were reloaded
        self.on_job_end: list = []              # called with the job when a job ended

    # --- the store, the queue, the service ---------------------------------------------------------

    @property
    def store(self):
        if self._store is None:
            from lab.store import RunStore
            self._store = RunStore(None)
        return self._store

    def store_or_none(self):
        try:
            return self.store
        except Exception as e:
            self.report(e, _("opening the run store"))
            return None

    @property
    def queue(self):
        if self._queue is None:
            from lab.runqueue import RunQueue
            self._queue = RunQueue(self.store)
        return self._queue

    @property
    def asker(self):
        from lab.store import Asker
        return Asker(client=self.client, name=self.state.name, role=self.role, page=self.page)

    @property
    def teacher(self) -> bool:
        return self.role == "teacher"

    def ensure_service(self) -> str:
        """Make sure something will train what this page asks: '' when a service runs, else words
        for the progress line (one is starting, or none can be started here)."""
        if self.queue.service() is not None:
            return ""
        if self.service_mode == "external":
            return _("waiting for the training service: it is not running (start the app with `scaling-lab app`, "
                     "which starts it)")
        if self.service_mode == "thread":
            if self._own_service is None:
                from lab.service import Service
                self._own_service = Service(self.store, workers=1, mode="thread").start()
                _OWN.add(self)
            return ""
        from lab.service import ensure_service
        ensure_service(self.store)
        return _("starting the training service (a process of its own; its first run compiles for a few seconds)")

    def speed(self) -> Speed:
        """The device the service trains on (its measured facts), else a guess that says so."""
        now = time.monotonic()
        if self._speed is None or now - self._speed_at > SPEED_S:
            facts = None
            try:
                facts = self.queue.setting("device")
            except Exception:        # a store being rewritten: keep the last facts
                pass
            self._speed = Speed.from_dict(facts) if facts else (self._speed or guess())
            self._speed_at = now
        return self._speed

    def close(self) -> None:
        """The page is done: its requests withdrawn, a service it started itself stopped."""
        try:
            self.queue.close_page(self.page)
        except Exception:
            pass
        if self._own_service is not None:
            self._own_service.stop()
            self._own_service = None

    # --- errors -------------------------------------------------------------------------------------

    def report(self, error, context: str = "") -> None:
        """Show an error in words in the error area. A user's mistake (ConfigError, ValueError)
        shows its message; anything else also its type and where it happened."""
        if isinstance(error, BaseException):
            if isinstance(error, (ConfigError, ValueError, OSError)):
                text = in_words(error)
            else:
                where = traceback.extract_tb(error.__traceback__)[-1:]
                loc = (_(" (at {name} in {file}:{line})").format(name=where[0].name,
                                                                 file=os.path.basename(where[0].filename),
                                                                 line=where[0].lineno) if where else "")
                text = f"{type(error).__name__}: {error}{loc}"
        else:
            text = str(error)
        self.state.error = _("{context}: {text}").format(context=context, text=text) if context else text

    # --- the runs -----------------------------------------------------------------------------------

    def refresh_runs(self) -> None:
        """Reload every run from the store (also at startup: runs survive a kernel restart)."""
        from lab import family as lfamily
        store = self.store_or_none()
        if store is None:
            return
        try:
            records = store.records()
        except Exception as e:
            return self.report(e, _("reading the run store"))
        rows = []
        for rec in reversed(records):
            row = rec.to_dict()
            row["config"] = rec.config.to_dict()
            row["curve"] = self._curve(rec) if rec.result is not None else []
            row["label"] = run_label(row)
            row["family"] = lfamily.family_key(rec.config)
            row["family_label"] = lfamily.family_label(rec.config)
            row["mine"] = self.owns(row)
            rows.append(row)
        self.records = {rec.run_id: rec for rec in records}
        self.state.runs = rows
        stored = {r["run_id"] for r in rows if r["status"] != "running"}
        if any(k in stored for k in self.state.live) and not self.state.job:
            self.state.live = {k: v for k, v in self.state.live.items() if k not in stored}
        self.state.selected = [i for i in self.state.selected if any(r["run_id"] == i for r in rows)]
        for fn in self.on_runs:
            fn()

    def owns(self, row: dict) -> bool:
        """Whether this page may delete the run: the teacher any, a student what they asked for."""
        return self.teacher or row.get("asked_by") == self.client

    def _curve(self, rec) -> list:
        if rec.run_id not in self._curves or rec.finished != self._curves[rec.run_id][0]:
            full = self.store.record(rec.run_id, curve=True)
            self._curves[rec.run_id] = (rec.finished, list(full.result.curve) if full and full.result else [])
        return self._curves[rec.run_id][1]


_OWN: "weakref.WeakSet[Session]" = weakref.WeakSet()


def stop_own_services() -> None:
    """Stop every training service a session of this process started for itself (tests, scripts)."""
    for session in list(_OWN):
        if session._own_service is not None:
            session._own_service.stop()
            session._own_service = None
