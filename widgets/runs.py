"""The Runs and Sample tabs' actions: choose runs, compare, delete, export, and text from a model.

Delete goes through the store's rule (`RunStore.delete(..., asker=)`): a student deletes only the
runs they asked for, the teacher any. Export gives a download link; only the teacher's export
also writes a CSV file into the store's folder. Text comes from the training service (a page
never loads a model): the page submits a task and a worker answers it.
"""

import asyncio
import base64
import csv
import io
import time

from lab.i18n import _
from widgets.session import Session
from widgets.text import kept_in_words, reported

SAMPLE_WAIT_S = 180.0           # a text sample the service has not answered by then is given up


class RunsActions:
    """Choose, compare, delete and export runs; sample text. `on_select` callbacks get the chosen ids."""

    def __init__(self, session: Session):
        self.session = session
        self.state, self.report = session.state, session.report
        self.on_select: list = []

    @reported
    def refresh(self) -> None:
        """Reload every run from the store."""
        self.session.refresh_runs()

    @reported
    def set_view(self, *, x_axis: str | None = None, log: bool | None = None) -> None:
        """The live panel's x axis (steps, tokens or flops) and scale (log-log or linear)."""
        view = dict(self.state.view)
        if x_axis is not None and x_axis not in ("steps", "tokens", "flops"):
            return self.report(_("the x axis must be steps, tokens or flops, got {x_axis}").format(x_axis=repr(x_axis)))
        if x_axis is not None:
            view["x_axis"] = x_axis
        if log is not None:
            view["log"] = bool(log)
        self.state.view = view

    @reported
    def select(self, run_ids) -> None:
        """Choose runs in the table; runs of one family also choose that family for the Scaling tab."""
        self.state.selected = list(run_ids)
        for fn in self.on_select:
            fn(list(run_ids))

    @reported
    def set_compare(self, on: bool) -> None:
        self.state.compare = bool(on)

    @reported
    def delete_selected(self) -> None:
        """Delete the chosen runs (all or none): a student's own runs, or any run for the teacher."""
        ids = [i for i in self.state.selected if i not in self.state.live or not self.state.job]
        if not ids:
            return self.report(_("select runs in the table first (runs in training cannot be deleted)"))
        try:
            self.session.store.delete(ids, asker=self.session.asker)
        except Exception as e:
            return self.report(e, _("delete"))
        self.state.selected = []
        self.state.live = {k: v for k, v in self.state.live.items() if k not in ids}
        self.session.refresh_runs()
        self.state.notice = _("deleted {n} run(s)").format(n=len(ids))

    @reported
    def export_csv(self) -> str | None:
        """The selected runs (else all) as CSV: a download link; the teacher's export is also saved as a
        file in the store folder (its path is returned)."""
        try:
            from lab.store import COLUMNS
            rows = [r.to_dict() for r in self.session.store.records()]
            if self.state.selected:
                rows = [r for r in rows if r["run_id"] in set(self.state.selected)]
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n")
            writer.writeheader()
            writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
            text = buf.getvalue()
            name = f"runs-{time.strftime('%Y%m%d-%H%M%S')}.csv"
            path = None
            if self.session.teacher:
                path = self.session.store.path / name
                path.write_text(text)
        except Exception as e:
            return self.report(e, _("export"))
        b64 = base64.b64encode(text.encode()).decode()
        link = _("download {name}").format(name=name)
        count = (_("({n} runs; also saved as {path})") if path else _("({n} runs)")).format(n=len(rows), path=path)
        self.state.download = f'<a download="{name}" href="data:text/csv;base64,{b64}">{link}</a> {count}'
        self.state.notice = (_("exported {n} runs to {path}") if path else
                             _("exported {n} runs (download the file)")).format(n=len(rows), path=path)
        return str(path) if path else None

    @reported
    def sample(self, run_id: str, prompt: str = "", length: int = 200,
               temperature: float = 0.8) -> asyncio.Task | None:
        """Text from a stored run's model (it continues `prompt`) into `state.sample_text`, written by
        the training service. Inside a kernel (a running event loop) the page waits in the background
        and this returns that task; without one it waits here and returns None. Either way the text is
        read from `state.sample_text`, never from the return."""
        if not run_id:
            return self.report(_("choose a run to sample from (runs that finished have weights)"), _("sampling"))
        from lab.sample import check_sample_args
        try:
            check_sample_args(int(length), float(temperature))
            self.session.store.resolve(run_id)
        except Exception as e:
            return self.report(e, _("sampling"))
        waiting = self.session.ensure_service()
        if waiting:
            self.state.notice = waiting
        args = {"run_id": run_id, "prompt": prompt, "length": int(length), "temperature": float(temperature)}
        task_id = self.session.queue.submit("sample", args, self.session.page)

        def answer():
            deadline = time.monotonic() + SAMPLE_WAIT_S
            while time.monotonic() < deadline:
                out = self.session.queue.task(task_id)
                if out["status"] in ("done", "failed"):
                    return out
                time.sleep(0.2)
            return {"status": "failed", "error": _("the training service did not answer within {seconds} s").format(
                seconds=f"{SAMPLE_WAIT_S:.0f}")}

        def show(out):
            if out["status"] == "done":
                self.state.sample_text = out["result"]
            else:
                self.report(kept_in_words(out["error"]), _("sampling"))

        async def background():
            try:
                show(await asyncio.to_thread(answer))
            except Exception as e:
                self.report(e, _("sampling"))

        try:
            return asyncio.get_running_loop().create_task(background())
        except RuntimeError:
            pass
        show(answer())
        return None
