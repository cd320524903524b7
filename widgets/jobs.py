"""The page's one background job: runs asked of the training service's queue, followed in the
store until they end, their curves drawn live, their place in the queue said while they wait.

A page never trains. Train (or a sweep) asks the queue (`lab.runqueue.RunQueue.ask`) for the form's
runs: a run the store holds finished is shown from the store at once; a run another page asked
for already is joined (it trains once; every asker follows it); the rest wait in the queue in
a fair order. An asyncio task on the kernel's event loop then polls the store every FOLLOW_S
(the reads run in a worker thread, so the page stays responsive), moves new curve points into
the state (flushed at most every UPDATE_S) and says the page's place in the queue and when its
run should start. A sweep feeds the queue as its runs end, within the page's queue limit.

Stop withdraws the page's requests: a queued run nobody else waits for leaves the queue, a
running one is stopped by its worker after the current chunk (kept, `cancelled`); a run other
pages wait for goes on and this page stops following it. A page that is closed does the same
(`page_gone`, from the heartbeat), and the service drops the requests of a page whose kernel is
gone.
"""

import asyncio
import math
import time
from dataclasses import dataclass, field

from lab import counting, family as lfamily
from lab.config import RunConfig
from lab.estimate import COMPILE_S, format_seconds, past_speeds, run_seconds
from lab.i18n import _
from lab.runqueue import starts
from lab.sweep import SweepReport
from lab.trackers import STOP_REASONS
from widgets.session import Session
from widgets.text import fmt_count, kept_in_words, status_words, stop_words, when_words

UPDATE_S = 0.25                 # live curves and progress: at most 4 updates a second
FOLLOW_S = 0.5                  # how often a following page reads the store
STOP_WAIT_S = 60.0              # after Stop, how long the page waits to see its run end cancelled
ENDED = ("done", "diverged", "cancelled", "failed", "interrupted")


@dataclass
class Job:
    """One job of a page: what it asked, what it follows, what ended, and how far it got."""
    kind: str                                   # "train" or "sweep"
    backlog: list                               # (config, budget) still to ask for
    total: int                                  # runs in the job
    again: bool = False
    t0: float = field(default_factory=time.perf_counter)
    asked: dict = field(default_factory=dict)   # run id -> config (asked, not ended)
    joined: set = field(default_factory=set)    # run ids another page had asked for first
    places: dict = field(default_factory=dict)  # run id -> place in the queue (1: next)
    steps: dict = field(default_factory=dict)   # run id -> last step seen
    tokens: dict = field(default_factory=dict)  # run id -> tokens seen
    live: dict = field(default_factory=dict)    # run id -> {"label", "params", "points", "steps"}
    ended: dict = field(default_factory=dict)   # run id -> lab.store.RunRecord (with its curve)
    stored: list = field(default_factory=list)  # run ids found finished when asked (shown, not trained)
    left: dict = field(default_factory=dict)    # run id -> why this page stopped following ("others", "dropped")
    tps: float = 0.0
    last: float = 0.0
    timer: object = None
    cancel: bool = False
    cancel_at: float = 0.0
    attempt: int = 0
    waiting_words: str = ""
    notice: str = ""
    view: object = None                         # the queue as last read (lab.runqueue.QueueView)


def _label(cfg: RunConfig, what: str) -> str:
    """A live curve's name: the run (as widgets.text.run_label says it) and whose it is (`what`, translated)."""
    return _("{arch} w{width} d{depth} · {tokens} tok · seed {seed}").format(
        arch=cfg.model.arch, width=cfg.model.width, depth=cfg.model.depth, tokens=fmt_count(cfg.tokens_trained),
        seed=cfg.seed) + f" · {what}"


def _loss_words(r) -> str:
    return _("validation loss {loss} nats/token ({bpb} bits/byte)").format(loss=f"{r.eval_loss:.4f}",
                                                                          bpb=f"{r.eval_bpb:.3f}")


class Jobs:
    """The page's background job (see the module doc). `launch` starts one; `stop` ends it."""

    def __init__(self, session: Session):
        self.session = session
        self.state = session.state
        self.report = session.report
        self.task: asyncio.Task | None = None
        self.job: Job | None = None

    # --- starting and stopping ----------------------------------------------------------------------

    def launch(self, kind: str, configs, *, budgets=None, again: bool = False) -> asyncio.Task | None:
        """Ask for `configs` (a run's seeds, or a sweep's plan) and follow them; returns the task."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self.report(_("training needs a running event loop (a Jupyter or Voila kernel); in a script "
                                 "use `asyncio.run(controller.train.run())`"))
        configs = list(configs)
        budgets = list(budgets) if budgets is not None else [None] * len(configs)
        self.job = job = Job(kind=kind, backlog=list(zip(configs, budgets)), total=len(configs), again=again)
        self.state.job = kind
        self.state.error = ""
        self.state.queue_text = ""
        self.state.progress = {"fraction": 0.0, "text": _("asking the training service…")}
        self.task = loop.create_task(self._run(job))
        return self.task

    def stop(self) -> None:
        """Stop pressed: this page stops waiting; a run nobody else waits for is stopped."""
        job = self.job
        if self.state.job and job is not None and not job.cancel:
            job.cancel, job.cancel_at = True, time.monotonic()
            following = job.asked.keys() & job.joined
            self.state.notice = (_("stopping following; the other page's run goes on")
                                 if following == job.asked.keys() and following
                                 else _("stopping after the current chunk of steps…"))

    def page_gone(self) -> None:
        """The page stopped sending its heartbeat (closed or reloaded): end the job, keep its runs."""
        if self.state.job and self.job is not None:
            self.stop()
            self.state.notice = _("the page was closed: its runs leave the queue, a running one stops after its "
                                  "chunk")

    # --- the loop -----------------------------------------------------------------------------------

    async def _run(self, job: Job):
        loop = asyncio.get_running_loop()
        out = None
        try:
            waiting = await asyncio.to_thread(self.session.ensure_service)
            job.waiting_words = waiting
            withdrawn = False
            while True:
                if job.cancel and not withdrawn:
                    withdrawn = True
                    job.backlog.clear()
                    answers = await asyncio.to_thread(self.session.queue.withdraw, list(job.asked), self.session.page)
                    for run_id, answer in answers.items():
                        if answer in ("others", "dropped"):
                            job.left[run_id] = answer
                            job.asked.pop(run_id, None)
                            job.live.pop(run_id, None)
                if job.backlog and not job.cancel:
                    await self._ask_more(job)
                if not job.asked and not job.backlog:
                    break
                await self._poll(job)
                self._maybe_flush(job, loop)
                if not job.asked and not job.backlog:
                    break
                if job.cancel and time.monotonic() - job.cancel_at > STOP_WAIT_S:
                    for run_id in list(job.asked):           # the worker never said: stop waiting for it
                        job.left[run_id] = "others"
                        job.asked.pop(run_id)
                    break
                await asyncio.sleep(FOLLOW_S)
            out = self._outcome(job)
        except Exception as e:
            from lab.runqueue import LimitError
            self.report(e, _("cannot queue") if isinstance(e, LimitError) else
                        _("training failed") if job.kind == "train" else _("the sweep failed"))
            try:
                await asyncio.to_thread(self.session.queue.withdraw, list(job.asked), self.session.page)
            except Exception:
                pass
        finally:
            if job.timer is not None:
                job.timer.cancel()
            self.session.refresh_runs()       # the ended runs' stored curves first, then the live ones go
            self._flush(job)
            self.state.job = ""
            self.state.queue_text = ""
            try:
                self._done(job, out)
                for fn in self.session.on_job_end:
                    fn(job, out)
            except Exception as e:          # a task's exception would only reach a log
                self.report(e, _("after the run"))
        return out

    async def _ask_more(self, job: Job) -> None:
        """Ask for the next runs of the backlog: all of them for the teacher or a short job, else as many
        as the page's queue limit leaves room for (a sweep feeds the queue as its runs end)."""
        s = self.session
        if s.teacher:
            room = len(job.backlog)
        else:
            limit = (await asyncio.to_thread(s.queue.limits))["max_queued"] or len(job.backlog)
            queued = sum(1 for r in job.asked if r in job.places)
            room = max(0, limit - queued) if job.kind == "sweep" else len(job.backlog)
        if not room:
            return
        take, job.backlog = job.backlog[:room], job.backlog[room:]
        asked = await asyncio.to_thread(s.queue.ask, [c for c, _b in take], s.asker, budgets=[b for _c, b in take],
                                        again=job.again)
        if asked.attempt:
            job.attempt = asked.attempt
            self.state.notice = _("training attempt {n} of this run; the finished run stays in the store "
                                  "beside it").format(n=asked.attempt)
        for cfg in asked.configs:
            if cfg.run_id in asked.stored:
                job.stored.append(cfg.run_id)
                rec = await asyncio.to_thread(s.store.record, cfg.run_id, curve=True)
                if rec is not None:
                    job.ended[cfg.run_id] = rec
                continue
            job.asked[cfg.run_id] = cfg
            if cfg.run_id in asked.joined:
                job.joined.add(cfg.run_id)
            job.places.update({k: v for k, v in asked.queued.items() if k == cfg.run_id})
        if job.joined & set(job.asked):
            self.state.notice = _("another page asked for this run first; following it (it trains once, and its "
                                  "curve grows here; Stop stops following, not that run)")

    async def _poll(self, job: Job) -> None:
        s = self.session
        progress = await asyncio.to_thread(s.queue.progress, list(job.asked), dict(job.steps))
        job.places = {w.run_id: w.place for w in progress.view.waiting if w.run_id in job.asked}
        for run_id, status in progress.status.items():
            cfg = job.asked.get(run_id)
            if cfg is None:
                continue
            new = progress.points.get(run_id, [])
            if status == "queued" and run_id in job.live:     # back in the queue (its worker died): starts over
                job.live.pop(run_id)
                job.steps.pop(run_id, None)
                job.tokens.pop(run_id, None)
            if status == "running" or new:
                who = _("another page's run") if run_id in job.joined else _("training")
                live = job.live.setdefault(run_id, {"label": _label(cfg, who), "params":
                                                    counting.param_counts(cfg.model).total, "points": [],
                                                    "steps": cfg.steps, "tokens": cfg.tokens_trained,
                                                    "family": lfamily.family_key(cfg)})
                live["points"].extend(new)
                if new:
                    last = new[-1]
                    job.steps[run_id] = int(last["step"])
                    job.tokens[run_id] = last.get("tokens_seen", 0)
                    job.tps = last.get("throughput/tokens_per_s") or job.tps
            if status in ENDED or status == "gone":
                rec = await asyncio.to_thread(s.store.record, run_id, curve=True)
                job.ended[run_id] = rec
                job.asked.pop(run_id)
                job.live.pop(run_id, None)
        job.view = progress.view

    def _outcome(self, job: Job):
        records = [r for r in job.ended.values() if r is not None]
        if job.kind == "sweep":
            stored = set(job.stored)
            return SweepReport(records=tuple(records),
                               trained=tuple(r.run_id for r in records if r.run_id not in stored
                                             and r.status not in ("failed", "interrupted")),
                               reused=tuple(r.run_id for r in records if r.run_id in stored),
                               missing=tuple(job.left) + tuple(c.run_id for c, _b in job.backlog), cancelled=job.cancel)
        return [r.result for r in sorted(records, key=lambda r: r.config.seed)    # what trained (for this page
                if r.result is not None and r.run_id not in job.stored]              # or another): not the stored

    # --- words and the state ------------------------------------------------------------------------

    def _maybe_flush(self, job: Job, loop) -> None:
        wait = job.last + UPDATE_S - time.perf_counter()
        if wait <= 0:
            self._flush(job)
        elif job.timer is None:
            job.timer = loop.call_later(wait, self._flush, job)

    def _seconds(self):
        speed = self.session.speed()
        past = past_speeds(self.session.records.values(), speed.device)
        return lambda cfg: run_seconds(cfg, past, speed) + (0 if cfg.shape_id in past.shape_tps
                                                            else COMPILE_S.get(speed.platform, 10.0))

    def _flush(self, job: Job) -> None:
        job.timer = None
        job.last = time.perf_counter()
        st = self.state
        live = {k: {**v, "points": list(v["points"])} for k, v in job.live.items()}
        gone = set(job.ended) | set(job.left)
        st.live = {**{k: v for k, v in st.live.items() if k not in live and k not in gone}, **live}
        elapsed = time.perf_counter() - job.t0
        ended = len(job.ended)
        training = [k for k in job.asked if k in job.live]
        if job.kind == "sweep":
            current = [self._fraction(job.live[k]) for k in training]
            fraction = min(1.0, (ended + (max(current) if current else 0.0)) / max(job.total, 1))
            text = _("run {n} of {total}").format(n=min(ended + 1, job.total), total=job.total)
        else:
            planned = sum(c.tokens_trained for c in job.asked.values()) + sum(
                r.config.tokens_trained for r in job.ended.values() if r is not None)
            fraction = min(1.0, (sum(job.tokens.values()) + sum(r.config.tokens_trained for r in job.ended.values()
                                                               if r is not None)) / max(planned, 1))
            steps = [(job.steps[k], job.asked[k].steps) for k in training if k in job.steps]
            text = (_("step {step} of {steps}").format(step=f"{steps[0][0]:,}", steps=f"{steps[0][1]:,}") if steps
                    else _("compiling…") if training else "")
        view = job.view
        queue_words = self._queue_words(job, view) if view is not None else ""
        if training and job.tps:
            text += " · " + _("{n} tokens/s").format(n=f"{job.tps:,.0f}")
        if training and 0 < fraction < 1:
            text += " · " + _("about {time} left").format(time=format_seconds(elapsed * (1 - fraction) / fraction))
        if queue_words:
            text = f"{text} · {queue_words}" if text else queue_words
        if job.waiting_words and not training:
            text = f"{text} · {job.waiting_words}" if text else job.waiting_words
        so_far = _("{time} so far").format(time=format_seconds(elapsed))
        text = f"{text} · {so_far}" if text else so_far
        if view is not None:
            text += self._busy_words(job, view)
        st.queue_text = queue_words
        st.progress = {"fraction": fraction, "text": text}

    def _queue_words(self, job: Job, view) -> str:
        """'waiting in the queue: place 3 of 5, starts in about 40 s' for this page's next waiting run."""
        mine = sorted((p, r) for r, p in job.places.items() if r in job.asked)
        if not mine:
            return ""
        place, run_id = mine[0]
        try:
            eta = starts(view, self._seconds()).get(run_id)
        except Exception:                       # an estimate must never break the progress line
            eta = None
        if eta is None:
            words = _("waiting in the queue: place {place} of {total}")
        elif eta >= 1:
            words = _("waiting in the queue: place {place} of {total}, starts in about {time}")
        else:
            words = _("waiting in the queue: place {place} of {total}, starts next")
        words = words.format(place=place, total=len(view.waiting), time=format_seconds(eta) if eta else "")
        if len(mine) > 1:
            words += _(" ({n} of this page's runs wait)").format(n=len(mine))
        return words

    def _busy_words(self, job: Job, view) -> str:
        """' · the server is busy: …' while the service trains runs for other pages."""
        others = [t for t in view.training if t.run_id not in job.asked]
        if not others:
            return ""
        n = len(others)
        if any(k in job.live for k in job.asked):
            cores = self.session.speed().cores
            runs = (_("{n} other run") if n == 1 else _("{n} other runs")).format(n=n)
            on = (_("{n} core") if cores == 1 else _("{n} cores")).format(n=cores)
            return " · " + _("the server is busy: {runs} training on its {cores}, so this one goes slower").format(
                runs=runs, cores=on)
        return " · " + (_("{n} run of other pages training now") if n == 1 else
                        _("{n} runs of other pages training now")).format(n=n)

    @staticmethod
    def _fraction(live: dict) -> float:
        pts = live["points"]
        return pts[-1]["step"] / live["steps"] if pts and live.get("steps") else 0.0

    def _done(self, job: Job, out) -> None:
        st = self.state
        elapsed = time.perf_counter() - job.t0
        records = [r for r in job.ended.values() if r is not None]
        trained = [r for r in records if r.run_id not in job.stored]
        results = [r.result for r in trained if r.result is not None]
        failed = [r for r in trained if r.result is None]
        notice = ""
        if job.kind == "sweep" and out is not None:
            notice = _("sweep finished in {time}: {summary}").format(time=format_seconds(elapsed),
                                                                    summary=out.summary())
        elif results:
            r = results[-1]
            rec = next(x for x in trained if x.run_id == r.run_id)
            who = _("another page's run") if r.run_id in job.joined else _("run")
            notice = (_("{who} {run_id} {status}: {loss} after {tokens} tokens in {time}; a model that ignores "
                        "context scores {unigram}").format(
                          who=who, run_id=r.run_id[:8], status=status_words(r.status), loss=_loss_words(r),
                          tokens=f"{r.tokens:,}", time=format_seconds(r.wall_s), unigram=f"{r.unigram_loss:.3f}")
                      + (_(", a perfect one {entropy} (the data's entropy)").format(entropy=f"{r.entropy_rate:.3f}")
                         if r.entropy_rate else "")
                      + (_("; stopped early at step {step} ({why})").format(
                          step=f"{r.steps:,}", why=stop_words(r.stopped) if r.stopped in STOP_REASONS else r.stopped)
                         if getattr(r, "stopped", None) else "")
                      + (_(" (asked for by {name})").format(name=rec.asked_name)
                         if rec.asked_name and rec.asked_by != self.session.client else ""))
        if results and job.attempt:
            notice = _("attempt {n}: {notice}").format(n=job.attempt, notice=notice)
        words = [notice] if notice else []
        for rec in failed:
            why = kept_in_words(rec.error) if rec.error else _("no result")
            words.append(_("run {run_id} {status}: {why}").format(run_id=rec.run_id[:8],
                                                                 status=status_words(rec.status), why=why))
            if rec.status == "failed":
                self.report(_("run {run_id}: {why}").format(run_id=rec.run_id[:8], why=why),
                            _("training failed") if job.kind == "train" else _("a run of the sweep failed"))
        for run_id in job.stored:
            rec = job.ended.get(run_id)
            if rec is None or rec.result is None or job.kind == "sweep":
                continue
            r = rec.result
            loss = _loss_words(r) if math.isfinite(r.eval_loss) else _("no validation loss")
            words.append(_("run {run_id} is already in the store ({status}, trained {when}): {loss}; shown without "
                           "training. Train again trains it anew beside it").format(
                run_id=run_id[:8], status=status_words(rec.status), when=when_words(rec.finished), loss=loss))
        for run_id, why in job.left.items():
            words.append((_("stopped following run {run_id}; the other page's run goes on") if why == "others"
                          else _("run {run_id} left the queue before it started")).format(run_id=run_id[:8]))
        if words:
            st.notice = "; ".join(words)
        ended_results = [r.result for r in records if r.result is not None]
        frac = 1.0 if ended_results and all(r.status == "done" for r in ended_results) and not job.left else \
            st.progress.get("fraction", 0.0)
        ends = ({status_words(r.status) for r in trained}
                | {_("{status} (from the store)").format(status=status_words(r.status)) for r in records
                   if r.run_id in job.stored}
                | ({_("stopped following")} if "others" in job.left.values() else set())
                | ({_("left the queue")} if "dropped" in job.left.values() else set()))
        status = ", ".join(sorted(ends)) or _("ended")
        st.progress = {"fraction": frac, "text": f"{status} · {format_seconds(elapsed)}"}
        job.notice = st.notice

    def family_of(self, out) -> str | None:
        """The one family a finished sweep trained (the Scaling tab turns to it), else None."""
        if not isinstance(out, SweepReport):
            return None
        keys = {lfamily.family_key(r.config) for r in out.records if r.status == "done"}
        return keys.pop() if len(keys) == 1 else None
