"""The app's background jobs: a training or a sweep run in a worker thread, its events moved to
the kernel's event loop, the state updated from them, and the words when it ends.

`lab.training.train_seeds` and `lab.sweep.run_sweep` run their whole loop in one call, so a job
runs it in a worker thread (`asyncio.to_thread`). A `_Relay` tracker hands each event to the
kernel's event loop (`loop.call_soon_threadsafe`), where an asyncio task consumes them and writes
the state (widgets are touched only on the loop: a thread that sets widgets loses updates). The
state is flushed at most every UPDATE_S seconds. Stop sets a `threading.Event` passed as
`cancel=`: the run ends within a chunk and is stored `cancelled`. Training never runs inside a
click handler, so Stop stays live while a model trains.

A shared store (a classroom: many pages, one store). Train first claims the form's runs in the
worker thread (`lab.store.RunStore.claim`): a run the store holds finished (done or diverged) is
shown from the store, not trained again; a run another page or process is training is followed
(its curve is polled from the store and drawn as it grows; Stop stops following, never that
run); only the rest is trained. Train again trains a new attempt (`RunConfig.attempt`, its own
run id) beside the finished run, which stays exactly as it was.

`Jobs` is a mixin of `widgets.controller.Controller`: it uses the controller's `state`, `report`,
`_cancel`, `_following` and `task`, and, when a job ends, its `refresh_runs`, `select`,
`_update_families`, `_check_prediction`, `_form_changed` and `_auto_fit`.
"""

import asyncio
import math
import os
import threading
import time

import lab
from lab import counting, family as lfamily, sweep as lsweep
from lab.config import RunConfig
from lab.trackers import Tracker
from widgets.text import STOP_WORDS, fmt_count, when_words

UPDATE_S = 0.25                 # live curves and progress: at most 4 updates a second
FOLLOW_S = 0.5                  # how often a page following another page's run polls the store
BUSY_S = 5.0                    # how often a training page asks the store how many runs others train
_DONE = object()


class _Relay(Tracker):
    """Hands a training thread's events to the event loop; the loop's task updates the widgets."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue):
        self.loop, self.queue = loop, queue

    def _put(self, *item):
        self.loop.call_soon_threadsafe(self.queue.put_nowait, item)

    def say(self, *item):
        """Anything else the worker tells the loop: ("stored", record), ("follow", config, points), ..."""
        self._put(*item)

    def start(self, config, info):
        self._put("start", config, info)

    def log(self, event):
        self._put("log", event)

    def finish(self, result):
        self._put("finish", result)

    def run_end(self, record, ended, total):       # lab.sweep.SweepTracker's step
        self._put("run_end", record, ended, total)


class Jobs:
    """The one background job of a controller: launched, relayed, flushed into the state, ended."""

    @staticmethod
    def _train_work(store, cfg: RunConfig, seeds: list, again: bool, relay: "_Relay", cancel) -> list:
        """The worker thread's part of Train: claim, then show, train and follow (see the module doc).
        Claims are made here: the thread that trains a run must be the one that holds it."""
        from lab.store import FINISHED, StoreTracker
        configs = [cfg.replace(seed=s) for s in seeds]
        train, follow = [], []
        if again:
            k = store.claim_attempt(configs)
            cfg, configs, train = cfg.replace(attempt=k), [c.replace(attempt=k) for c in configs], list(seeds)
            relay.say("attempt", k)
        else:
            for c in configs:
                claim = store.claim(c)
                if claim.status == "claimed":
                    train.append(c.seed)
                elif claim.status == "finished":
                    rec = store.record(c.run_id, curve=True)
                    if rec is not None:         # (deleted meanwhile: nothing to show)
                        relay.say("stored", rec, "stored")
                else:
                    follow.append(c)
        results = []
        if train:
            held = [c.run_id for c in configs if c.seed in train]
            try:
                results = lab.train_seeds(cfg, train, trackers=[StoreTracker(store), relay], cancel=cancel)
            except BaseException as e:        # never leave a claim behind (the pool thread lives on)
                store.release(held, status="failed" if isinstance(e, Exception) else "interrupted",
                              error=f"{type(e).__name__}: {e}")
                raise
        for c in follow:
            relay.say("following", c)
            rec = store.wait(c.run_id, cancel=cancel, poll_s=FOLLOW_S,
                             on_curve=lambda points, c=c: relay.say("follow", c, points))
            full = store.record(c.run_id, curve=True) if rec is not None and rec.status in FINISHED else None
            if full is not None:
                relay.say("stored", full, "followed")
            else:
                relay.say("unfollowed", c, rec.status if rec is not None else "deleted")
        return results
    def _launch(self, kind: str, work, *, total_tokens: int, runs: int) -> asyncio.Task | None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self.report("training needs a running event loop (a Jupyter or Voila kernel); in a script "
                               "use `asyncio.run(controller.train())`")
        self._cancel = threading.Event()
        self._following = set()
        self.state.job = kind
        self.state.error = ""
        self._busy_at, self._busy = 0.0, ""
        self.state.progress = {"fraction": 0.0, "text": "starting (compiling a new model shape takes a few seconds)…"
                                                        + self._busy_words()}
        self.task = loop.create_task(self._run_job(kind, work, total_tokens, runs))
        return self.task

    async def _run_job(self, kind: str, work, total_tokens: int, runs: int):
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        relay = _Relay(loop, queue)
        job = {"t0": time.perf_counter(), "tokens": {}, "live": {}, "ended": 0, "runs": runs,
               "total_tokens": total_tokens, "tps": 0.0, "last": 0.0, "timer": None, "kind": kind, "results": [],
               "shown": [], "unfollowed": [], "attempt": 0}
        worker = asyncio.ensure_future(asyncio.to_thread(work, relay, self._cancel))
        worker.add_done_callback(lambda _: queue.put_nowait((_DONE,)))
        out = None
        try:
            while True:
                item = await queue.get()
                if item[0] is _DONE:
                    break
                self._absorb(job, item)
                self._maybe_flush(job, loop)
            out = worker.result()           # the training error, if any, is raised here
        except Exception as e:
            self.report(e, "training failed" if kind == "train" else "the sweep failed")
        finally:
            if job["timer"] is not None:
                job["timer"].cancel()
            self._flush(job)
            self.state.job = ""
            self.refresh_runs()
            try:
                self._job_done(job, out)
            except Exception as e:          # a task's exception would only reach a log
                self.report(e, "after the run")
        return out

    def _absorb(self, job: dict, item: tuple) -> None:
        kind = item[0]
        if kind == "start":
            cfg, info = item[1], item[2]
            job["live"][cfg.run_id] = {"label": f"{cfg.model.arch} w{cfg.model.width} d{cfg.model.depth} · "
                                                f"{fmt_count(cfg.tokens_trained)} tok · seed {cfg.seed} · training",
                                       "params": info["params/total"], "points": [], "steps": info["steps"]}
        elif kind == "log":
            ev = item[1]
            job["live"].setdefault(ev.run_id, {"label": ev.run_id, "params": 1, "points": [], "steps": ev.steps})
            job["live"][ev.run_id]["points"].append(ev.metrics())
            job["tokens"][ev.run_id] = ev.tokens
            job["tps"] = ev.tokens_per_s
            job["step"] = (ev.step, ev.steps)
        elif kind == "finish":
            job["results"].append(item[1])
        elif kind == "stored":           # a finished run from the store: shown, not trained
            job["shown"].append((item[1], item[2]))
            job["live"].pop(item[1].run_id, None)
            self._following.discard(item[1].run_id)
        elif kind == "attempt":
            job["attempt"] = item[1]
            self.state.notice = (f"training attempt {item[1]} of this run; the finished run stays in the store "
                                 "beside it")
        elif kind == "following":
            cfg = item[1]
            self._following.add(cfg.run_id)
            self.state.notice = (f"another page is training run {cfg.run_id[:8]}; following it (its curve grows "
                                 "here; Stop stops following, not that run)")
        elif kind == "follow":
            cfg, points = item[1], item[2]
            job["live"][cfg.run_id] = {"label": f"{cfg.model.arch} w{cfg.model.width} d{cfg.model.depth} · "
                                                f"{fmt_count(cfg.tokens_trained)} tok · seed {cfg.seed} · "
                                                "another page is training it",
                                       "params": counting.param_counts(cfg.model).total,
                                       "points": list(points), "steps": cfg.steps}
            if points:
                job["tokens"][cfg.run_id] = points[-1]["tokens_seen"]
                job["tps"] = points[-1].get("throughput/tokens_per_s") or 0.0
                job["step"] = (points[-1]["step"], cfg.steps)
        elif kind == "unfollowed":
            job["unfollowed"].append((item[1], item[2]))
            job["live"].pop(item[1].run_id, None)
            self._following.discard(item[1].run_id)
        elif kind == "run_end":
            job["ended"] = item[2]
            job["runs"] = item[3]

    def _maybe_flush(self, job: dict, loop) -> None:
        wait = job["last"] + UPDATE_S - time.perf_counter()
        if wait <= 0:
            self._flush(job)
        elif job["timer"] is None:
            job["timer"] = loop.call_later(wait, self._flush, job)

    def _flush(self, job: dict) -> None:
        job["timer"] = None
        job["last"] = time.perf_counter()
        st = self.state
        live = {k: {**v, "points": list(v["points"])} for k, v in job["live"].items()}
        gone = {rec.run_id for rec, _ in job["shown"]} | {c.run_id for c, _ in job["unfollowed"]}
        st.live = {**{k: v for k, v in st.live.items() if k not in live and k not in gone}, **live}
        elapsed = time.perf_counter() - job["t0"]
        if job["kind"] == "sweep":
            runs, ended = max(job["runs"], 1), job["ended"]
            current = [self._run_fraction(v) for k, v in job["live"].items() if k not in self._finished(job)]
            fraction = min(1.0, (ended + (current[-1] if current else 0.0)) / runs)
            text = f"run {min(ended + 1, runs)} of {runs}"
        else:
            fraction = min(1.0, sum(job["tokens"].values()) / max(job["total_tokens"], 1))
            step = job.get("step")
            text = f"step {step[0]:,} of {step[1]:,}" if step else "compiling…"
        if job["tps"]:
            text += f" · {job['tps']:,.0f} tokens/s"
        if 0 < fraction < 1:
            text += f" · about {lsweep.format_seconds(elapsed * (1 - fraction) / fraction)} left"
        st.progress = {"fraction": fraction, "text": text + f" · {lsweep.format_seconds(elapsed)} so far"
                                                     + self._busy_words()}

    def _busy_words(self) -> str:
        """' · the server is busy: …' while other pages or processes train in this store (they share
        its cores, so this run goes slower), else ''. Asked of the store at most every BUSY_S."""
        now = time.monotonic()
        if now - self._busy_at >= BUSY_S:
            self._busy_at = now
            try:
                n = self.store.training_elsewhere()
            except Exception:               # a store that cannot be read says nothing here; errors show elsewhere
                n = 0
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
            self._busy = (f" · the server is busy: {n} other run{'s' if n != 1 else ''} training on its {cores} "
                          f"core{'s' if cores != 1 else ''}, so this one goes slower" if n else "")
        return self._busy

    @staticmethod
    def _finished(job: dict) -> set:
        return {r.run_id for r in job["results"]}

    @staticmethod
    def _run_fraction(live: dict) -> float:
        pts = live["points"]
        return pts[-1]["step"] / live["steps"] if pts and live.get("steps") else 0.0

    def _job_done(self, job: dict, out) -> None:
        st = self.state
        results = job["results"]
        elapsed = time.perf_counter() - job["t0"]
        if job["kind"] == "sweep" and out is not None:
            st.notice = f"sweep finished in {lsweep.format_seconds(elapsed)}: {out.summary()}"
        elif results:
            r = results[-1]
            st.notice = (f"run {r.run_id[:8]} {r.status}: validation loss {r.eval_loss:.4f} nats/token "
                         f"({r.eval_bpb:.3f} bits/byte) after {r.tokens:,} tokens in "
                         f"{lsweep.format_seconds(r.wall_s)}; a model that ignores context scores "
                         f"{r.unigram_loss:.3f}" + (f", a perfect one {r.entropy_rate:.3f} (the data's entropy)"
                                                    if r.entropy_rate else "")
                         + (f"; stopped early at step {r.steps:,} ({STOP_WORDS.get(r.stopped, r.stopped)})"
                            if getattr(r, "stopped", None) else ""))
        if results and job["attempt"]:
            st.notice = f"attempt {job['attempt']}: " + st.notice
        shown = [rec for rec, _ in job["shown"] if rec is not None and rec.result is not None]
        words = self._shown_words(job, shown)
        if words:
            st.notice = "; ".join(([st.notice] if results else []) + words)
        ended = list(results) + [rec.result for rec in shown]
        frac = 1.0 if ended and all(r.status == "done" for r in ended) else st.progress.get("fraction", 0.0)
        ends = ({r.status for r in results} | {f"{r.status} (from the store)" for r in shown}
                | ({"stopped following"} if job["unfollowed"] else set()))
        status = ", ".join(sorted(ends)) or "ended"
        st.progress = {"fraction": frac, "text": f"{status} · {lsweep.format_seconds(elapsed)}"}
        if shown and not results:       # shown as if just trained: chosen in the table, drawn in the plot
            self.select([rec.run_id for rec in shown])
        if job["kind"] == "sweep" and out is not None:      # the Scaling tab turns to the family just trained
            keys = {lfamily.family_key(r.config) for r in out.records if r.status == "done"}
            self._update_families(prefer=keys.pop() if len(keys) == 1 else None)
        self._check_prediction()
        self._form_changed()               # time estimates now know this device's speed
        self._auto_fit()

    @staticmethod
    def _shown_words(job: dict, shown: list) -> list[str]:
        """The notice for runs shown from the store or followed, and for runs no longer followed."""
        words = []
        for rec, how in job["shown"]:
            if rec is None or rec.result is None:
                continue
            r = rec.result
            loss = (f"validation loss {r.eval_loss:.4f} nats/token ({r.eval_bpb:.3f} bits/byte)"
                    if math.isfinite(r.eval_loss) else "no validation loss")
            if how == "followed":
                words.append(f"another page trained run {rec.run_id[:8]}: {rec.status}, {loss}")
            else:
                words.append(f"run {rec.run_id[:8]} is already in the store ({rec.status}, trained "
                             f"{when_words(rec.finished)}): {loss}; shown without training. Train again trains it anew "
                             "beside it")
        for cfg, status in job["unfollowed"]:
            words.append(f"stopped following run {cfg.run_id[:8]}; the other page's run goes on" if status == "running"
                         else f"the other page's run {cfg.run_id[:8]} ended {status}; press Train to train it here")
        return words
