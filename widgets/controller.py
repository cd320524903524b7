"""The app's actions, composed: one `Session` (state, store and queue, who the page is, errors)
passed to a small class per tab. Panels call one action each; tests call them directly.

    c = Controller()
    c.form.set_values(width=64)        # the run form (widgets.form)
    c.train.start()                    # Train, Train again, Stop (widgets.training)
    c.sweep.start()                    # the Sweep tab (widgets.training)
    c.scaling.fit()                    # the Scaling tab (widgets.scaling)
    c.runs.delete_selected()           # the Runs and Sample tabs (widgets.runs)
    c.classroom.clear_queue()          # the teacher's Class tab (widgets.classroom)

The page's lifecycle is here: a page opened (its link applied, the page registered with the
store, a full class said so), the browser's id and name, the page gone.
"""

import asyncio

from lab.config import ConfigError
from lab.i18n import _
from widgets.classroom import ClassActions
from widgets.form import FormActions
from widgets.jobs import Jobs
from widgets.runs import RunsActions
from widgets.scaling import ScalingActions
from widgets.session import Session
from widgets.state import AppState
from widgets.text import reported
from widgets.training import SweepActions, TrainActions


class Controller:
    """Everything the app does, by tab (see the module doc).

    Args:
        state: the state to write (a new one by default).
        store: a `lab.store.RunStore`, or None for the default store ($SCALING_LAB_STORE).
        service: "auto", "thread" or "external" (see `widgets.session.Session`).
    """

    def __init__(self, state: AppState | None = None, store=None, *, service: str | None = None):
        self.state = state or AppState()
        self.session = s = Session(self.state, store, service=service)
        self.report = s.report
        self.form = FormActions(s)
        self.jobs = Jobs(s)
        self.train = TrainActions(s, self.form, self.jobs)
        self.sweep = SweepActions(s, self.form, self.jobs)
        self.runs = RunsActions(s)
        self.scaling = ScalingActions(s, self.train)
        self.classroom = ClassActions(s)
        self.runs.on_select.append(self.scaling.selected)
        self.form.on_lang.append(self._relabel)
        self.on_page_opened: list = []          # the app's views: e.g. the heartbeat expects its page now
        s.on_job_end.insert(0, self._job_ended)
        self.state.role = s.role
        s.refresh_runs()
        self.form.changed()

    @property
    def task(self) -> asyncio.Task | None:
        """The running job's task (Train or a sweep), for tests and notebooks to await."""
        return self.jobs.task

    def _job_ended(self, job, out) -> None:
        """Runs shown from the store (nothing trained): chosen in the table, drawn as if just trained;
        and the form's estimates, which now know this device's speed."""
        trained = [r for r in job.ended if r not in job.stored]
        if job.stored and not trained and job.kind == "train":
            self.runs.select(list(job.stored))
        self.form.changed()

    def _relabel(self) -> None:
        """The language changed: a law on show is fitted again, so that its notes are in the new
        language; a budget's answer is cleared (Compute asks again)."""
        st = self.state
        if st.fit:
            self.scaling.fit(st.fit.get("variable"), quiet=True)
        st.budget_text = ""

    @reported
    def clear_error(self) -> None:
        self.state.error = ""

    # --- the page's lifecycle ---------------------------------------------------------------------

    @reported
    def page_opened(self, query: str | None = None) -> None:
        """A page asked for this app (a preheated kernel learns its link only now): the link's
        settings, the page registered, the store as it is now; a full class said so. Train is
        enabled only then: a click before would train the defaults, not the link's model."""
        try:
            self.form.apply_query(query)
            self.state.role = self.session.role
            self.session.refresh_runs()
            self.form.changed()
            self._register()
            for fn in self.on_page_opened:
                fn()
            if self.session.teacher and (self.state.tab == "class" or self.state.plot_mode == "class"):
                self.classroom.watch()
        finally:
            self.state.opened = True

    def _register(self) -> None:
        q = self.session.queue
        limit = q.limits()["max_pages"]
        if limit and not self.session.teacher:
            others = [p for p in q.pages() if p.page != self.session.page]
            if len(others) >= limit:
                self.state.full = _("The class is full: {n} pages are open, the most the teacher allows ({limit}). "
                                    "Try again in a few minutes, or ask your teacher.").format(n=len(others),
                                                                                               limit=limit)
                return
        q.open_page(self.session.asker)

    @reported
    def browser(self, client: str, name: str = "") -> None:
        """The page's browser said who it is (its id, kept in the browser, and the last name typed)."""
        client = "".join(ch for ch in str(client) if ch.isalnum())[:32]
        if not client:
            return
        self.session.client = client
        if name and not self.state.name:
            from lab.asker import clean_name
            self.state.name = clean_name(name)
        self.session.queue.rename(self.session.asker)
        self.session.refresh_runs()

    @reported
    def set_name(self, name: str) -> None:
        """The display name the student typed: shown to the teacher beside their runs (as text)."""
        from lab.asker import NAME_MAX, clean_name
        clean = clean_name(name)
        if len(str(name).strip()) > NAME_MAX:
            self.report(_("a name is at most {n} characters; kept {name}").format(n=NAME_MAX, name=repr(clean)))
        self.state.name = clean
        self.session.queue.rename(self.session.asker)

    def page_gone(self) -> None:
        """The page stopped sending its heartbeat (closed or reloaded): its job ends, its runs are kept."""
        self.jobs.page_gone()

    def beat(self) -> None:
        """The browser's heartbeat reached the kernel: the store's page row says it is alive."""
        try:
            self.session.queue.beat(self.session.page)
        except Exception:          # a busy store: the next beat tries again
            pass

    def close(self) -> None:
        """This page is done (tests, a notebook cell re-run): withdraw its requests, stop its own service."""
        self.session.close()


__all__ = ["Controller", "ConfigError"]
