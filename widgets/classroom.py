"""The teacher's view of a class: who is on, what trains and for whom, what waits, every student's
live curve on one plot (the projector: `?teacher=TOKEN&view=class`), the limits, and a button
that empties the queue. Only a page holding the teacher token (`widgets.session.role_for`) may
act here; the store and the service enforce the same rules for everyone else.
"""

import asyncio

from lab import counting
from lab.estimate import COMPILE_S, format_seconds, past_speeds, run_seconds
from lab.i18n import N_, _
from lab.runqueue import DEFAULT_LIMITS, starts
from widgets.session import Session
from widgets.text import fmt_count, reported

CLASS_S = 1.0          # how often the teacher's view reads the queue and the class's curves
LIMIT_WORDS = {"max_queued": N_("max queued"), "max_tokens": N_("max tokens"),
               "max_pages": N_("max pages")}     # the class's limits as the notice says them (marked: _() them)


def _config_words(cfg) -> str:
    m = cfg.model
    return _("{arch} w{width} d{depth} · {tokens} tok · seed {seed}").format(
        arch=m.arch, width=m.width, depth=m.depth, tokens=fmt_count(cfg.tokens_trained), seed=cfg.seed)


def _names(askers) -> str:
    names = []
    for a in askers:
        label = _("{name} (teacher)").format(name=a.label) if a.teacher else a.label
        if label not in names:
            names.append(label)
    return ", ".join(names) or _("nobody (stopping)")


class ClassActions:
    """The Class tab (teacher only)."""

    def __init__(self, session: Session):
        self.session = session
        self.state, self.report = session.state, session.report
        self.task: asyncio.Task | None = None
        self._since: dict = {}

    def _teacher_only(self, what: str) -> bool:
        """`what`: the action, translated ("clear the queue")."""
        if not self.session.teacher:
            self.report(_("only the teacher can {what}; open the teacher's link (printed by `scaling-lab app`)").format(
                what=what))
            return False
        return True

    @reported
    def refresh(self) -> dict | None:
        """Read the class: open pages, what trains, what waits (with estimated starts), the limits."""
        if not self.session.teacher:
            return None
        q = self.session.queue
        progress = q.progress([], {})
        return self._show(progress.view, q.limits())

    def _show(self, view, limits) -> dict:
        speed = self.session.speed()
        past = past_speeds(self.session.records.values(), speed.device)

        def seconds(cfg):
            return run_seconds(cfg, past, speed) + (0 if cfg.shape_id in past.shape_tps
                                                    else COMPILE_S.get(speed.platform, 10.0))
        eta = starts(view, seconds)
        out = {"pages": [{"page": p.page, "name": p.asker.label, "role": p.asker.role} for p in view.pages],
               "training": [{"run_id": t.run_id, "what": _config_words(t.config), "who": _names(t.askers),
                             "step": t.step, "steps": t.config.steps, "cancelling": t.cancelling}
                            for t in view.training],
               "waiting": [{"place": w.place, "run_id": w.run_id, "what": _config_words(w.config),
                            "who": _names(w.askers), "starts": format_seconds(eta.get(w.run_id, 0.0))}
                           for w in view.waiting],
               "limits": dict(limits), "workers": view.workers}
        self.state.classroom = out
        return out

    @reported
    def clear_queue(self) -> None:
        """Empty the queue (runs being trained go on); the pages that waited are told by their job."""
        if not self._teacher_only(_("clear the queue")):
            return
        n = self.session.queue.clear()
        self.state.notice = _("cleared the queue: {n} waiting run(s) left it; the runs in training go on").format(n=n)
        self.refresh()

    @reported
    def set_limits(self, **limits) -> None:
        """The class's limits: max_queued (runs a page may have waiting), max_tokens (per run), max_pages
        (0 or None lifts one). The service enforces them."""
        if not self._teacher_only(_("change the class's limits")):
            return
        unknown = set(limits) - set(DEFAULT_LIMITS)
        if unknown:
            raise ValueError(_("unknown limit {name}; known: {known}").format(name=repr(sorted(unknown)[0]),
                                                                              known=", ".join(DEFAULT_LIMITS)))
        values = {k: (None if v in (None, 0, "") else v) for k, v in limits.items()}
        new = self.session.queue.set_limits(**values)
        none = _("none")
        self.state.notice = _("class limits: {limits}").format(limits=", ".join(
            f"{_(LIMIT_WORDS[k]) if k in LIMIT_WORDS else k.replace('_', ' ')} {v if v else none}"
            for k, v in new.items()))
        self.refresh()

    @reported
    def set_plot_mode(self, mode: str) -> None:
        """The live panel shows this page's runs ("app") or every student's live curve ("class")."""
        if mode not in ("app", "class"):
            raise ValueError(_("the plot shows app or class curves, not {mode}").format(mode=repr(mode)))
        if mode == "class" and not self._teacher_only(_("show every student's curves")):
            return
        self.state.plot_mode = mode
        self.watch()

    def watch(self) -> asyncio.Task | None:
        """While the teacher looks (the Class tab or the class plot), keep the class's view fresh."""
        if not self.session.teacher or (self.task is not None and not self.task.done()):
            return self.task
        try:
            self.task = asyncio.get_running_loop().create_task(self._watch())
        except RuntimeError:           # no event loop (a script): one look
            self.refresh()
            return None
        return self.task

    async def _watch(self) -> None:
        q = self.session.queue
        while self.session.teacher and (self.state.tab == "class" or self.state.plot_mode == "class"):
            try:
                view = (await asyncio.to_thread(q.progress, [], {})).view
                ids = [t.run_id for t in view.training]
                progress = await asyncio.to_thread(q.progress, ids, dict(self._since))
                limits = await asyncio.to_thread(q.limits)
                self._show(progress.view, limits)
                live = {}
                for t in progress.view.training:
                    old = self.state.class_live.get(t.run_id, {}).get("points", [])
                    new = progress.points.get(t.run_id, [])
                    if new:
                        self._since[t.run_id] = int(new[-1]["step"])
                    live[t.run_id] = {"label": f"{_names(t.askers)}: {_config_words(t.config)}",
                                      "params": counting.param_counts(t.config.model).total,
                                      "points": [*old, *new], "steps": t.config.steps}
                self._since = {k: v for k, v in self._since.items() if k in live}
                self.state.class_live = live
            except Exception as e:       # a busy store: try again, say so once
                self.report(e, _("the class view"))
            await asyncio.sleep(CLASS_S)
