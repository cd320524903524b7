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
from lab.runqueue import starts
from lab.sweep import SweepReport
from widgets.session import Session
from widgets.text import STOP_WORDS, fmt_count, when_words

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
    return (f"{cfg.model.arch} w{cfg.model.width} d{cfg.model.depth} · {fmt_count(cfg.tokens_trained)} tok · "
            f"seed {cfg.seed} · {what}")


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
            return self.report("training needs a running event loop (a Jupyter or Voila kernel); in a script "
                               "use `asyncio.run(controller.train.run())`")
        configs = list(configs)
        budgets = list(budgets) if budgets is not None else [None] * len(configs)
        self.job = job = Job(kind=kind, backlog=list(zip(configs, budgets)), total=len(configs), again=again)
        self.state.job = kind
        self.state.error = ""
        self.state.queue_text = ""
        self.state.progress = {"fraction": 0.0, "text": "asking the training service…"}
        self.task = loop.create_task(self._run(job))
        return self.task

    def stop(self) -> None:
        """Stop pressed: this page stops waiting; a run nobody else waits for is stopped."""
        job = self.job
        if self.state.job and job is not None and not job.cancel:
            job.cancel, job.cancel_at = True, time.monotonic()
            following = job.asked.keys() & job.joined
            self.state.notice = ("stopping following; the other page's run goes on" if following == job.asked.keys()
                                 and following else "stopping after the current chunk of steps…")

    def page_gone(self) -> None:
        """The page stopped sending its heartbeat (closed or reloaded): end the job, keep its runs."""
        if self.state.job and self.job is not None:
            self.stop()
            self.state.notice = "the page was closed: its runs leave the queue, a running one stops after its chunk"

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
            self.report(e, "cannot queue" if isinstance(e, LimitError) else
                        "training failed" if job.kind == "train" else "the sweep failed")
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
                self.report(e, "after the run")
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
        asked = await asyncio.to_thread(s.queue.ask, [c for c, _ in take], s.asker, budgets=[b for _, b in take],
                                        again=job.again)
        if asked.attempt:
            job.attempt = asked.attempt
            self.state.notice = (f"training attempt {asked.attempt} of this run; the finished run stays in the store "
                                 "beside it")
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
            self.state.notice = ("another page asked for this run first; following it (it trains once, and its curve "
                                 "grows here; Stop stops following, not that run)")

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
                who = "another page's run" if run_id in job.joined else "training"
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
                               missing=tuple(job.left) + tuple(c.run_id for c, _ in job.backlog), cancelled=job.cancel)
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
            text = f"run {min(ended + 1, job.total)} of {job.total}"
        else:
            planned = sum(c.tokens_trained for c in job.asked.values()) + sum(
                r.config.tokens_trained for r in job.ended.values() if r is not None)
            fraction = min(1.0, (sum(job.tokens.values()) + sum(r.config.tokens_trained for r in job.ended.values()
                                                               if r is not None)) / max(planned, 1))
            steps = [(job.steps[k], job.asked[k].steps) for k in training if k in job.steps]
            text = f"step {steps[0][0]:,} of {steps[0][1]:,}" if steps else ("compiling…" if training else "")
        view = job.view
        queue_words = self._queue_words(job, view) if view is not None else ""
        if training and job.tps:
            text += f" · {job.tps:,.0f} tokens/s"
        if training and 0 < fraction < 1:
            text += f" · about {format_seconds(elapsed * (1 - fraction) / fraction)} left"
        if queue_words:
            text = f"{text} · {queue_words}" if text else queue_words
        if job.waiting_words and not training:
            text = f"{text} · {job.waiting_words}" if text else job.waiting_words
        text = (text + f" · {format_seconds(elapsed)} so far") if text else f"{format_seconds(elapsed)} so far"
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
        words = f"waiting in the queue: place {place} of {len(view.waiting)}"
        if eta is not None:
            words += f", starts in about {format_seconds(eta)}" if eta >= 1 else ", starts next"
        if len(mine) > 1:
            words += f" ({len(mine)} of this page's runs wait)"
        return words

    def _busy_words(self, job: Job, view) -> str:
        """' · the server is busy: …' while the service trains runs for other pages."""
        others = [t for t in view.training if t.run_id not in job.asked]
        if not others:
            return ""
        n = len(others)
        return (f" · the server is busy: {n} other run{'s' if n != 1 else ''} training on its "
                f"{self.session.speed().cores} core{'s' if self.session.speed().cores != 1 else ''}, so this one "
                "goes slower" if any(k in job.live for k in job.asked) else
                f" · {n} run{'s' if n != 1 else ''} of other pages training now")

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
            notice = f"sweep finished in {format_seconds(elapsed)}: {out.summary()}"
        elif results:
            r = results[-1]
            rec = next(x for x in trained if x.run_id == r.run_id)
            who = "another page's run" if r.run_id in job.joined else "run"
            notice = (f"{who} {r.run_id[:8]} {r.status}: validation loss {r.eval_loss:.4f} nats/token "
                      f"({r.eval_bpb:.3f} bits/byte) after {r.tokens:,} tokens in {format_seconds(r.wall_s)}; a model "
                      f"that ignores context scores {r.unigram_loss:.3f}"
                      + (f", a perfect one {r.entropy_rate:.3f} (the data's entropy)" if r.entropy_rate else "")
                      + (f"; stopped early at step {r.steps:,} ({STOP_WORDS.get(r.stopped, r.stopped)})"
                         if getattr(r, "stopped", None) else "")
                      + (f" (asked for by {rec.asked_name})" if rec.asked_name and rec.asked_by != self.session.client
                         else ""))
        if results and job.attempt:
            notice = f"attempt {job.attempt}: " + notice
        words = [notice] if notice else []
        for rec in failed:
            why = (rec.error or "no result").removeprefix("ConfigError: ").removeprefix("StoreError: ")
            words.append(f"run {rec.run_id[:8]} {rec.status}: {why}")
            if rec.status == "failed":
                self.report(f"run {rec.run_id[:8]}: {why}", "training failed" if job.kind == "train"
                            else "a run of the sweep failed")
        for run_id in job.stored:
            rec = job.ended.get(run_id)
            if rec is None or rec.result is None or job.kind == "sweep":
                continue
            r = rec.result
            loss = (f"validation loss {r.eval_loss:.4f} nats/token ({r.eval_bpb:.3f} bits/byte)"
                    if math.isfinite(r.eval_loss) else "no validation loss")
            words.append(f"run {run_id[:8]} is already in the store ({rec.status}, trained "
                         f"{when_words(rec.finished)}): {loss}; shown without training. Train again trains it anew "
                         "beside it")
        for run_id, why in job.left.items():
            words.append(f"stopped following run {run_id[:8]}; the other page's run goes on" if why == "others"
                         else f"run {run_id[:8]} left the queue before it started")
        if words:
            st.notice = "; ".join(words)
        ended_results = [r.result for r in records if r.result is not None]
        frac = 1.0 if ended_results and all(r.status == "done" for r in ended_results) and not job.left else \
            st.progress.get("fraction", 0.0)
        ends = ({r.status for r in trained} | {f"{r.status} (from the store)" for r in records
                                               if r.run_id in job.stored}
                | ({"stopped following"} if "others" in job.left.values() else set())
                | ({"left the queue"} if "dropped" in job.left.values() else set()))
        status = ", ".join(sorted(ends)) or "ended"
        st.progress = {"fraction": frac, "text": f"{status} · {format_seconds(elapsed)}"}
        job.notice = st.notice

    def family_of(self, out) -> str | None:
        """The one family a finished sweep trained (the Scaling tab turns to it), else None."""
        if not isinstance(out, SweepReport):
            return None
        keys = {lfamily.family_key(r.config) for r in out.records if r.status == "done"}
        return keys.pop() if len(keys) == 1 else None
