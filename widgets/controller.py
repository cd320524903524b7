"""The app's logic: the only module of `widgets` that calls `lab`. It writes `AppState`; views observe.

Why one module over the house's ~350 lines: every action here shares the same three things --
the run store, the one background job and the error area -- and the rule "only the controller
calls lab" keeps every engine call in one place a reader can audit. Sections: form, jobs
(training and sweeps), runs, scaling, text and files.

Background work. `lab.training.train_seeds` and `lab.sweep.run_sweep` run their whole loop in one
call, so a job runs it in a worker thread (`asyncio.to_thread`). A `_Relay` tracker hands each
event to the kernel's event loop (`loop.call_soon_threadsafe`), where an asyncio task consumes
them and writes the state (widgets are touched only on the loop: a thread that sets widgets
loses updates). The state is flushed at most every UPDATE_S seconds. Stop sets a
`threading.Event` passed as `cancel=`: the run ends within a chunk and is stored `cancelled`.
Training never runs inside a click handler, so Stop stays live while a model trains.

A shared store (a classroom: many pages, one store). Train first claims the form's runs in the
worker thread (`lab.store.RunStore.claim`): a run the store holds finished (done or diverged) is
shown from the store, not trained again; a run another page or process is training is followed
(its curve is polled from the store and drawn as it grows; Stop stops following, never that
run); only the rest is trained. Train again trains a new attempt (`RunConfig.attempt`, its own
run id) beside the finished run, which stays exactly as it was.
"""

import asyncio
import base64
import functools
import math
import os
import re
import tempfile
import threading
import time
import traceback

import numpy as np

import lab
from lab import counting, family as lfamily, fit as lawfit, laws, schema, sweep as lsweep
from lab.config import ConfigError, RunConfig
from lab.store import when_words
from lab.trackers import Tracker
from widgets import fields
from widgets.state import AppState

UPDATE_S = 0.25                 # live curves and progress: at most 4 updates a second
FOLLOW_S = 0.5                  # how often a page following another page's run polls the store
MAX_UPLOAD_BYTES = 20 << 20     # 20 MB of text is plenty for a byte-level model in a classroom
BOOTSTRAP_N = 200               # resamples for the fit's band: enough for a picture, fast
FIT_MIN_E = 5                   # fit the irreducible loss E only with this many distinct x (else A·x^-α)
VARIABLES = {"N": ("params_total", "parameters N"), "D": ("tokens", "training tokens D"),
             "C": ("flops", "training compute C (FLOPs)")}
LAW_BOOTSTRAP = 400             # resamples for a family law's intervals (lab.laws.fit_family)
MAX_EPOCHS = laws.MAX_EPOCHS    # runs that repeat their data more often than this are data-limited: flagged
QUICK_LADDER_WIDTHS = (8, 12, 16, 20, 24, 32)   # quick mode: a ladder of tiny models, seconds each
_DONE = object()
STOP_WORDS = {"target": "the validation loss reached the target loss",
              "patience": "the validation loss stopped improving"}


def fmt_count(n: float) -> str:
    """1234567 -> '1.23 M'."""
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.3g}"


def fmt_bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def in_words(error) -> str:
    """An engine error for the app: the settings it names and the values it suggests read as the
    form's labels ("try Width = 64"; the command line says "try --width 64"), so the way out
    names a control the student can see (lab.schema spells both)."""
    if isinstance(error, ConfigError):
        return error.spelled(schema.app_name, schema.app_fix)
    return str(error)


def epochs_flag(epochs) -> str:
    """'⚠ 6.5 epochs' for a run that saw its data more than MAX_EPOCHS times (its loss measures the
    data limit, not the model), else ''."""
    if epochs is not None and math.isfinite(epochs) and epochs > MAX_EPOCHS:
        return f"⚠ {epochs:.1f} epochs"
    return ""


def run_label(row: dict) -> str:
    flag = epochs_flag(row.get("epochs"))
    return (f"{row['arch']} w{row['width']} d{row['depth']} · {fmt_count(row['planned_tokens'])} tok · "
            f"seed {row['seed']}" + (f" · attempt {row['attempt']}" if row.get("attempt") else "")
            + f" · {row['status']}" + (f" · {flag}" if flag else ""))


def _num(v):
    """A float for the state: None where the engine says nan (not measured, one seed)."""
    return float(v) if v is not None and math.isfinite(float(v)) else None


def _size(row: dict) -> tuple:
    """A run's size within its family: width, depth and planned tokens (the seed aside)."""
    return (row["width"], row["depth"], row["planned_tokens"])


def reported(method):
    """A public action: any exception it raises is shown in the error area, in words, never
    lost in a log (a button's handler would swallow it); the action then returns None."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Exception as e:
            self.report(e, method.__name__.replace("_", " "))
            return None
    return wrapper


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


class Controller:
    """Everything the app does. Button handlers call one method each; tests call them directly.

    Args:
        state: the state to write (a new one by default).
        store: a `lab.store.RunStore`, or None for the default store ($SCALING_LAB_STORE).
    """

    def __init__(self, state: AppState | None = None, store=None):
        from lab import runtime
        runtime.setup()        # compile cache and GPU memory habits, before the first computation
        self.state = state or AppState()
        self._store = store
        self._cancel = threading.Event()
        self._following: set = set()                # run ids this page follows (another page trains them)
        self.task: asyncio.Task | None = None
        self._curves: dict[str, list] = {}          # finished runs' curves (they never change)
        self._fit_objects: dict = {}                # the last fits (objects stay here, not in the state)
        self._records: dict = {}                    # run id -> lab.store.RunRecord (fit_family reads results)
        self._holdout_chosen = False                # the student set "Hold out": keep it while the family stays
        ladder_widths = QUICK_LADDER_WIDTHS if fields.quick() else lsweep.LADDER_WIDTHS
        self.sweep_form = {"mode": "ladder", "widths": "16,32,64", "depths": "1", "tokens": "", "budgets": "3e11,1e12",
                           "sizes": "16,32,64", "ladder_widths": ",".join(map(str, ladder_widths)),
                           "ladder_depths": "1" if fields.quick() else "",
                           "tokens_per_param": f"{lsweep.CHINCHILLA_TOKENS_PER_PARAM:g}", "ladder_seeds": 1,
                           "ladder_tuned": True}
        self.state.form = fields.defaults()
        self.refresh_runs()
        self._form_changed()

    # --- errors ---------------------------------------------------------------------------------

    def report(self, error, context: str = "") -> None:
        """Show an error in words in the error area. A user's mistake (ConfigError, ValueError)
        shows its message; anything else also its type and where it happened."""
        if isinstance(error, BaseException):
            if isinstance(error, (ConfigError, ValueError, OSError)):
                text = in_words(error)
            else:
                where = traceback.extract_tb(error.__traceback__)[-1:]
                loc = (f" (at {where[0].name} in {os.path.basename(where[0].filename)}:{where[0].lineno})"
                       if where else "")
                text = f"{type(error).__name__}: {error}{loc}"
        else:
            text = str(error)
        self.state.error = f"{context}: {text}" if context else text

    @reported
    def clear_error(self) -> None:
        self.state.error = ""

    @property
    def store(self):
        if self._store is None:
            from lab.store import RunStore
            self._store = RunStore(None)
        return self._store

    # --- the form -------------------------------------------------------------------------------

    @reported
    def set_values(self, **values) -> None:
        """New form values (from the controls or a link); recomputes config, readouts and link."""
        self.state.form = {**self.state.form, **values}
        self._form_changed()

    @reported
    def apply_query(self, query: str | None = None) -> None:
        """Set the controls from a page's query string (`?width=256&depth=4`); Voila hands it to
        the kernel as $QUERY_STRING. Bad values are reported in the error area, never raised."""
        query = os.environ.get("QUERY_STRING", "") if query is None else query
        values, errors = fields.parse_query(query)
        if values:
            self.set_values(**values)
            self.state.notice = "settings from the link: " + ", ".join(f"{k}={v}" for k, v in values.items())
        if errors:
            self.report("the link's settings were not all used: " + "; ".join(errors))

    @reported
    def page_opened(self, query: str) -> None:
        """A page asked for this (preheated) app: show the store as it is now, then the link's settings."""
        self.refresh_runs()
        self.apply_query(query)
        self._form_changed()

    def build_config(self, form: dict | None = None) -> RunConfig:
        """The RunConfig the form describes. Raises ConfigError (in words) when it cannot run."""
        v = self.state.form if form is None else form
        values = {}
        for f in fields.FIELDS:                        # every form field that is a RunConfig setting
            if f.path and v.get(f.name) is not None:
                x = v[f.name]
                values[f.path] = int(round(x)) if f.kind == "int" else float(x) if f.kind == "float" else x
        if v["data"] == "file":
            if not self.state.data_path:
                raise ConfigError("choose a text file to upload first (Dataset: my text file)")
            values["data.path"] = self.state.data_path
        if fields.quick():
            values |= {"eval_tokens": 4096, "evals": 4}
        return RunConfig.from_settings(values)

    def _checked_config(self) -> RunConfig:
        """The form's config, also refused when it would not fit in this device's memory."""
        from lab.training import check_memory
        cfg = self.build_config()
        check_memory(cfg, int(self.state.form["seeds"]))
        return cfg

    def _form_changed(self) -> None:
        st = self.state
        st.share = fields.format_query(st.form)
        try:
            cfg = self._checked_config()
        except (ConfigError, ValueError) as e:
            st.config_error = in_words(e)
            st.readouts = {}
            st.stored = ""
            return
        st.config_error = ""
        st.stored = self._stored_words(cfg, int(st.form["seeds"]))
        try:
            st.readouts = self._readouts(cfg, int(st.form["seeds"]))
        except Exception as e:  # an estimate must never break the form
            st.readouts = {}
            self.report(e, "estimating the run")
        if self.sweep_form:
            self.set_sweep()

    def _stored_words(self, cfg: RunConfig, seeds: int) -> str:
        """'' unless the store holds every seed of the form's config finished: then when, in words
        (Train shows it; Train again is offered)."""
        store = self._store_or_none()
        if store is None:
            return ""
        from lab.store import FINISHED
        try:
            recs = [store.record(cfg.replace(seed=s).run_id) for s in range(cfg.seed, cfg.seed + seeds)]
        except Exception:                  # a store being rewritten: offer nothing this time
            return ""
        if not recs or any(r is None or r.status not in FINISHED for r in recs):
            return ""
        last = max(r.finished or 0 for r in recs)
        status = ", ".join(sorted({r.status for r in recs}))
        return f"already in the store ({status}, trained {when_words(last)})"

    def _readouts(self, cfg: RunConfig, seeds: int) -> dict:
        counts = counting.param_counts(cfg.model)
        flops = counting.run_flops(cfg) * seeds
        est = lsweep.estimate(lsweep.Plan(configs=(cfg,)), self._store_or_none())
        from lab.training import memory_limit
        mem, have = counting.memory_bytes(cfg, seeds), memory_limit()
        ratio = cfg.tokens_trained / counts.total
        seconds = est.seconds * seeds if est.runs else 0.0
        return {
            "params": f"{fmt_count(counts.total)} parameters ({fmt_count(counts.non_embedding)} non-embedding)",
            "flops": f"{flops:.3g} FLOPs to train ({cfg.steps:,} steps of {cfg.tokens_per_step:,} tokens)",
            "tokens_per_param": (f"D = {cfg.tokens_per_param:g} x N = {fmt_count(cfg.tokens_trained)} tokens: the data "
                                 "follows the model size (Data (tokens) is not used)" if cfg.tokens_per_param
                                 else f"{ratio:.3g} tokens per parameter (compute-optimal is about 20)"),
            "time": (f"about {lsweep.format_seconds(seconds)} ({est.source})" if est.runs
                     else "already in the store (Train shows it; Train again trains it anew beside it)"),
            "memory": f"about {fmt_bytes(mem)}" + (f" of {fmt_bytes(have)} on this device" if have else ""),
        }

    @reported
    def upload(self, name: str, content: bytes) -> None:
        """A text file from the browser: size-checked, written to a file in the store folder
        (named by its hash, so the same text gives the same run ids), never executed."""
        try:
            if len(content) > MAX_UPLOAD_BYTES:
                raise ValueError(f"{name} is {fmt_bytes(len(content))}, over the {fmt_bytes(MAX_UPLOAD_BYTES)} "
                                 "limit; upload an excerpt")
            try:
                bytes(content).decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"{name} is not UTF-8 text; save it as plain text (.txt) and upload it "
                                 "again") from None
            import hashlib
            folder = self.store.path / "uploads"
            folder.mkdir(exist_ok=True)
            stem = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.splitext(os.path.basename(name))[0])[:40] or "text"
            path = folder / f"{stem}-{hashlib.sha256(content).hexdigest()[:12]}.txt"
            fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
            with os.fdopen(fd, "wb") as f:
                f.write(bytes(content))
            os.replace(tmp, path)
        except (OSError, ValueError) as e:
            return self.report(e, "upload")
        self.state.data_path = str(path)
        self.state.notice = f"uploaded {name} ({fmt_bytes(len(content))}); training now reads it"
        self.set_values(data="file")

    # --- jobs: training and sweeps --------------------------------------------------------------

    @reported
    def start_training(self, config: RunConfig | None = None, *, again: bool = False) -> asyncio.Task | None:
        """Train the form's config (all its seeds) in the background; returns the job's task.

        Runs the store holds finished are shown from the store instead (no training); runs another
        page is training are followed live. `again`: train a new attempt of every seed beside
        the stored runs (Train again), whatever the store holds."""
        if self.state.job:
            return self.report("a job is running; press Stop or wait for it to finish")
        try:
            cfg = config or self._checked_config()
        except (ConfigError, ValueError) as e:
            return self.report(e, "cannot train")
        n = int(self.state.form["seeds"]) if config is None else 1
        seeds = list(range(cfg.seed, cfg.seed + n))
        store = self.store

        def work(relay, cancel):
            return self._train_work(store, cfg, seeds, again, relay, cancel)

        return self._launch("train", work, total_tokens=cfg.tokens_trained * n, runs=n)

    @reported
    def train_again(self) -> asyncio.Task | None:
        """Train the form's config anew, as a new attempt beside its finished runs (never over them)."""
        return self.start_training(again=True)

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

    @reported
    def stop(self) -> None:
        """Ask the job to end after its current chunk of steps (kept and marked cancelled). A page
        following another page's run stops following; that run goes on."""
        if self.state.job:
            self._cancel.set()
            self.state.notice = ("stopping following; the other page's run goes on" if self._following
                                 else "stopping after the current chunk of steps…")

    def page_gone(self) -> None:
        """The page stopped sending its heartbeat (closed or reloaded): end the job, keep its runs."""
        if self.state.job:
            self._cancel.set()
            self.state.notice = "the page was closed: the job stops after its current chunk of steps"

    async def train(self, config: RunConfig | None = None, *, again: bool = False):
        """Train and wait (for notebooks and tests): `await controller.train()`."""
        task = self.start_training(config, again=again)
        return await task if task is not None else None

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
        self.state.progress = {"fraction": 0.0, "text": "starting (compiling a new model shape takes a few seconds)…"}
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
        st.progress = {"fraction": fraction, "text": text + f" · {lsweep.format_seconds(elapsed)} so far"}

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

    # sweeps

    @reported
    def set_sweep(self, **values) -> None:
        """Sweep inputs (mode ladder, grid or isoflop; comma lists) -> the plan's cost, stated before it starts."""
        self.sweep_form.update(values)
        try:
            plan = self.build_plan()
            text = plan.summary(self._store_or_none())
            self.state.sweep_plan = {"text": text, "runs": len(plan), "error": ""}
        except (ConfigError, ValueError) as e:
            self.state.sweep_plan = {"text": "", "runs": 0, "error": str(e)}

    def build_plan(self):
        s = self.sweep_form
        base = self.build_config()

        def ints(name):
            return [int(fields.number(t)) for t in str(s[name]).split(",") if t.strip()] or None

        if s["mode"] not in ("ladder", "grid", "isoflop"):
            raise ValueError(f"a sweep is a ladder, a grid or an IsoFLOP plan, not {s['mode']!r}")
        if s["mode"] == "ladder":
            text = str(s["tokens_per_param"]).strip()
            if not text:
                raise ConfigError("tokens per parameter is empty; 20 is Chinchilla's compute-optimal ratio")
            n = int(s["ladder_seeds"])
            if n < 1:
                raise ConfigError(f"seeds per size must be 1 or more, got {n}")
            if s.get("ladder_tuned", True):     # μP at the tuned learning rate (lab.sweep.ladder_base)
                base = lsweep.ladder_base(base)
            return lsweep.ladder(base, widths=ints("ladder_widths"), depths=ints("ladder_depths"),
                                 tokens_per_param=fields.number(text), seeds=list(range(base.seed, base.seed + n)))
        if s["mode"] == "grid":
            if base.tokens_per_param and ints("tokens"):
                raise ConfigError(f"the form's \"Tokens per parameter\" is {base.tokens_per_param:g}, so each run's "
                                  "tokens follow its size; set it to 0 to sweep tokens, or leave Tokens empty")
            return lsweep.grid(base, widths=ints("widths"), depths=ints("depths"), tokens=ints("tokens"))
        budgets = [fields.number(t) for t in str(s["budgets"]).split(",") if t.strip()]
        # an IsoFLOP plan sets each run's tokens from its budget, never from its size
        return lsweep.isoflop(base.replace(tokens_per_param=0.0), budgets, widths=ints("sizes"))

    @reported
    def start_sweep(self) -> asyncio.Task | None:
        """Train the sweep's runs that the store does not hold yet, in the background."""
        if self.state.job:
            return self.report("a job is running; press Stop or wait for it to finish")
        try:
            plan = self.build_plan()
        except (ConfigError, ValueError) as e:
            return self.report(e, "cannot start the sweep")
        store = self.store

        def work(relay, cancel):
            return lsweep.run_sweep(plan, store, trackers=[relay], cancel=cancel)

        return self._launch("sweep", work, total_tokens=sum(c.tokens_trained for c in plan), runs=len(plan))

    async def sweep(self):
        task = self.start_sweep()
        return await task if task is not None else None

    # --- runs -----------------------------------------------------------------------------------

    def _store_or_none(self):
        try:
            return self.store
        except Exception as e:
            self.report(e, "opening the run store")
            return None

    @reported
    def refresh_runs(self) -> None:
        """Reload every run from the store (also at startup: runs survive a kernel restart)."""
        store = self._store_or_none()
        if store is None:
            return
        try:
            records = store.records()
        except Exception as e:
            return self.report(e, "reading the run store")
        rows = []
        for rec in reversed(records):
            row = rec.to_dict()
            row["config"] = rec.config.to_dict()
            row["curve"] = self._curve(rec) if rec.result is not None else []
            row["label"] = run_label(row)
            row["family"] = lfamily.family_key(rec.config)
            row["family_label"] = lfamily.family_label(rec.config)
            rows.append(row)
        self._records = {rec.run_id: rec for rec in records}
        self.state.runs = rows
        stored = {r["run_id"] for r in rows if r["status"] != "running"}
        if any(k in stored for k in self.state.live) and not self.state.job:
            self.state.live = {k: v for k, v in self.state.live.items() if k not in stored}
        self.state.selected = [i for i in self.state.selected if any(r["run_id"] == i for r in rows)]
        self._update_families()

    def _curve(self, rec) -> list:
        if rec.run_id not in self._curves or rec.finished != self._curves[rec.run_id][0]:
            full = self.store.record(rec.run_id, curve=True)
            self._curves[rec.run_id] = (rec.finished, list(full.result.curve) if full and full.result else [])
        return self._curves[rec.run_id][1]

    @reported
    def set_view(self, *, x_axis: str | None = None, log: bool | None = None) -> None:
        """The live panel's x axis (steps, tokens or flops) and scale (log-log or linear)."""
        view = dict(self.state.view)
        if x_axis is not None and x_axis not in ("steps", "tokens", "flops"):
            return self.report(f"the x axis must be steps, tokens or flops, got {x_axis!r}")
        if x_axis is not None:
            view["x_axis"] = x_axis
        if log is not None:
            view["log"] = bool(log)
        self.state.view = view

    @reported
    def select(self, run_ids) -> None:
        """Choose runs in the table; runs of one family also choose that family for the Scaling tab."""
        self.state.selected = list(run_ids)
        key = self._selected_family()
        if key and key != self.state.family and key in self._family_keys():
            self.set_family(key)

    @reported
    def set_compare(self, on: bool) -> None:
        self.state.compare = bool(on)

    @reported
    def delete_selected(self) -> None:
        ids = [i for i in self.state.selected if i not in self.state.live or not self.state.job]
        if not ids:
            return self.report("select runs in the table first (runs in training cannot be deleted)")
        try:
            self.store.delete(ids)
        except Exception as e:
            return self.report(e, "delete")
        self.state.selected = []
        self.state.live = {k: v for k, v in self.state.live.items() if k not in ids}
        self.refresh_runs()
        self.state.notice = f"deleted {len(ids)} run(s)"

    @reported
    def export_csv(self) -> str | None:
        """The selected runs (else all) as CSV: a file in the store folder and a download link."""
        try:
            table = self.store.table()
            if self.state.selected:
                table = table[table["run_id"].isin(self.state.selected)]
            text = table.to_csv(index=False)
            path = self.store.path / f"runs-{time.strftime('%Y%m%d-%H%M%S')}.csv"
            path.write_text(text)
        except Exception as e:
            return self.report(e, "export")
        b64 = base64.b64encode(text.encode()).decode()
        self.state.download = (f'<a download="{path.name}" href="data:text/csv;base64,{b64}">download {path.name}</a>'
                               f" ({len(table)} runs; also saved as {path})")
        self.state.notice = f"exported {len(table)} runs to {path}"
        return str(path)

    @reported
    def sample(self, run_id: str, prompt: str = "", length: int = 200, temperature: float = 0.8):
        """Text from a stored run's weights (the model continues `prompt`). Inside a kernel the
        model runs in a worker thread and this returns the task; without an event loop, the text."""
        def work():
            if not run_id:
                raise ValueError("choose a run to sample from (runs that finished have weights)")
            from lab.sample import sample
            return sample(self.store, run_id, prompt, length=int(length), temperature=float(temperature))

        async def background():
            try:
                self.state.sample_text = await asyncio.to_thread(work)
            except Exception as e:
                self.report(e, "sampling")

        try:
            return asyncio.get_running_loop().create_task(background())
        except RuntimeError:
            pass
        try:
            self.state.sample_text = work()
        except Exception as e:
            return self.report(e, "sampling")
        return self.state.sample_text

    # --- scaling --------------------------------------------------------------------------------
    # A law is fitted to one family at a time (lab.family): runs that differ only in size, tokens
    # and seed. The families are listed from the finished runs; the Scaling tab fits the chosen one.

    def _family_keys(self) -> list[str]:
        return [f["key"] for f in self.state.families]

    def _selected_family(self) -> str:
        """The family of the selected runs when they are all of one, else ''."""
        sel = set(self.state.selected)
        keys = {r["family"] for r in self.state.runs if r["run_id"] in sel}
        return keys.pop() if len(keys) == 1 else ""

    def _update_families(self, prefer: str | None = None) -> None:
        """List the finished runs' families (most sizes first) and keep one chosen: `prefer` (the
        family a sweep just trained), else the current one, else the selected runs', else the one
        with most sizes."""
        groups: dict[str, dict] = {}
        for r in self.state.runs:
            if r["status"] != "done" or not (r.get("eval_loss") or 0) > 0:
                continue
            g = groups.setdefault(r["family"], {"key": r["family"], "label": r["family_label"], "sizes": set(),
                                                "runs": 0, "tokens_per_param": r["config"]["tokens_per_param"]})
            g["sizes"].add((r["width"], r["depth"]))
            g["runs"] += 1
        fams = sorted(({**g, "sizes": len(g["sizes"])} for g in groups.values()),
                      key=lambda g: (-g["sizes"], -g["runs"]))
        self.state.families = fams
        keys = [f["key"] for f in fams]
        chosen = next((k for k in (prefer, self.state.family, self._selected_family()) if k and k in keys),
                      keys[0] if keys else "")
        self._choose_family(chosen)

    def _default_holdout(self) -> int:
        """2 when the family has 6 sizes or more (fit 4, check 2), else 0. The size an extrapolation
        checks does not count: it stays out of the fit."""
        st = self.state
        pred = st.prediction
        skip = tuple(pred["size"]) if pred and pred.get("family") == st.family and pred.get("size") else None
        sizes = {(r["width"], r["depth"]) for r in st.runs if r["family"] == st.family and r["status"] == "done"
                 and (r.get("eval_loss") or 0) > 0 and _size(r) != skip}
        return 2 if len(sizes) >= 6 else 0

    def _choose_family(self, key: str) -> bool:
        """Make `key` the chosen family; another family clears the fit and its prediction. Returns
        whether the family changed."""
        st = self.state
        changed = key != st.family
        if changed:
            st.family = key
            self._holdout_chosen = False
            self._fit_objects = {}
            st.fit = {"variable": st.fit.get("variable", "N"), "notes": []}
            if st.prediction and st.prediction.get("family") != key:
                st.prediction = {}
        if not self._holdout_chosen:
            st.holdout = self._default_holdout()
        return changed

    @reported
    def set_family(self, key: str) -> None:
        """Fit this family (a key from `state.families`); its law is fitted at once when it can be."""
        if key not in self._family_keys():
            raise ValueError(f"no family {key!r} among the finished runs; choose one from the Family list")
        if self._choose_family(key):
            self._auto_fit()

    @reported
    def set_holdout(self, k: int) -> None:
        """How many of the family's largest sizes the law leaves out and predicts (a ladder's law in N)."""
        if isinstance(k, bool) or int(k) != k or k < 0:
            raise ValueError(f"hold out a whole number of sizes, 0 or more, not {k!r}")
        self._holdout_chosen = True
        self.state.holdout = int(k)
        fam = next((f for f in self.state.families if f["key"] == self.state.family), None)
        if fam and fam["tokens_per_param"] > 0 and self.state.fit.get("variable", "N") == "N":
            self.fit()

    def _config(self, row: dict) -> RunConfig:
        rec = self._records.get(row["run_id"])
        return rec.config if rec is not None else RunConfig.from_dict(row["config"])

    def _fit_pool(self) -> dict:
        """The runs a fit may use: the selected runs when 3 or more are (they must be of one family),
        else the chosen family's. The model an extrapolation checks is left out: a law is never
        judged on a run it was fitted to.

        Raises:
            ConfigError: the selected runs are of several families (naming the fields that differ).
        """
        rows = self.state.runs
        sel = set(self.state.selected)
        chosen = [r for r in rows if r["run_id"] in sel]
        if len(chosen) >= 3:
            try:
                lfamily.check_one_family([self._config(r) for r in chosen])
            except ConfigError as e:
                raise ConfigError(f"{e}, in the Family list or by selecting runs of one family only") from None
            pool, scope, key = chosen, "the selected runs", chosen[0]["family"]
        else:
            key = self.state.family
            pool, scope = [r for r in rows if key and r["family"] == key], "the family"
        checked = []
        pred = self.state.prediction
        if pred and pred.get("family") == key and pred.get("size"):
            checked = [r for r in pool if _size(r) == tuple(pred["size"])]
            pool = [r for r in pool if _size(r) != tuple(pred["size"])]
        left: dict = {}
        for r in pool:
            if r["status"] != "done" or not (r.get("eval_loss") or 0) > 0:
                left[r["status"]] = left.get(r["status"], 0) + 1
        done = self._one_attempt([r for r in pool if r["status"] == "done" and (r.get("eval_loss") or 0) > 0])
        first = (pool or checked or [None])[0]
        return {"rows": done, "left": left, "scope": scope, "family": key,
                "label": first["family_label"] if first else "",
                "tokens_per_param": first["config"]["tokens_per_param"] if first else 0.0,
                "checked": [r for r in checked if r["status"] == "done"]}

    @staticmethod
    def _one_attempt(rows: list) -> list:
        """One run per config and seed: a retrain (Train again) measures the same run again, so a
        fit keeps only its newest finished attempt (two attempts are not two seeds)."""
        best: dict = {}
        for r in rows:
            key = (r["family"], _size(r), r["seed"])
            if key not in best or (r.get("attempt") or 0) > (best[key].get("attempt") or 0):
                best[key] = r
        keep = {id(r) for r in best.values()}
        return [r for r in rows if id(r) in keep]

    def _auto_fit(self) -> None:
        """Fit again after the runs changed, quietly, when there is something to fit (a refusal to
        pool families still shows in the fit's notes)."""
        try:
            if len(self._fit_pool()["rows"]) < 3:
                return
        except ConfigError:
            pass
        self.fit(quiet=True)

    @reported
    def set_variable(self, variable: str) -> None:
        """Plot and fit final loss against N, D or C."""
        if variable not in VARIABLES:
            raise ValueError(f"plot loss against N, D or C, not {variable!r}")
        self.state.fit = {"variable": variable, "notes": []}
        self._fit_objects = {}
        self._auto_fit()

    def _scope_notes(self, pool: dict, n_runs: int) -> list[str]:
        notes = [f"fitted on {n_runs} finished run(s) of {pool['scope']}" + (f": {pool['label']}" if pool["label"]
                                                                               else "")]
        if pool["left"]:
            notes.append("left out: " + ", ".join(f"{n} {s}" for s, n in sorted(pool["left"].items())))
        if pool["checked"]:
            r = pool["checked"][0]
            notes.append(f"left out of the fit: {len(pool['checked'])} run(s) of the model it predicted (width "
                         f"{r['width']}, depth {r['depth']}); they check this law")
        return notes

    @reported
    def fit(self, variable: str | None = None, *, quiet: bool = False) -> dict | None:
        """Fit the chosen family's law. Against N with a ladder (tokens per parameter > 0): the
        family's L(N) = E + A·N^-α with its largest sizes held out and predicted, and the reasons to
        doubt it (lab.laws.fit_family). Otherwise L(x) = E + A·x^-α to the final validation losses
        (x = N, D or C) with a bootstrap band, and the Chinchilla law L(N, D) with its
        compute-optimal frontier when the runs vary both N and D. Diverged and cancelled runs are
        left out and counted; runs of several families are refused."""
        variable = variable or self.state.fit.get("variable", "N")
        if variable not in VARIABLES:
            raise ValueError(f"plot loss against N, D or C, not {variable!r}")
        out = {"variable": variable, "equation": "", "curve": None, "band": None, "frontier": None, "chinchilla": "",
               "notes": [], "law": "", "family": self.state.family, "held_out": [], "warnings": [], "sizes": []}
        try:
            pool = self._fit_pool()
        except ConfigError as e:
            out["notes"] = [in_words(e)]
            self.state.fit = out
            self._fit_objects = {}
            if not quiet:
                self.report(e, "fit")
            return None
        out["family"] = pool["family"]
        if variable == "N" and pool["tokens_per_param"] > 0 and pool["rows"]:
            return self._fit_family_law(pool, out, quiet)
        rows = pool["rows"]
        col, name = VARIABLES[variable]
        x = np.array([float(r[col]) for r in rows])
        y = np.array([float(r["eval_loss"]) for r in rows])
        notes = out["notes"] = self._scope_notes(pool, len(rows))
        try:
            if len(np.unique(x)) < 3:
                raise ValueError(f"a power law in {variable} needs finished runs at 3 or more distinct values of "
                                 f"{name}; have {len(np.unique(x))}. Train more sizes or run a sweep")
            irreducible = len(np.unique(x)) >= FIT_MIN_E
            law = lawfit.fit_power_law(x, y, irreducible=irreducible, variable=variable)
        except ValueError as e:
            self.state.fit = out
            self._fit_objects = {}
            if not quiet:
                self.report(e, "fit")
            return None
        grid = self._grid(x, variable)
        out["equation"] = law.equation()
        out["law"] = "power"
        out["curve"] = {"x": grid.tolist(), "y": law.predict(grid).tolist()}
        if not irreducible:
            notes.append(f"without the irreducible loss E (that needs {FIT_MIN_E} distinct values of {variable})")
        if not law.converged:
            notes.append(f"the fit did not fully converge: {law.message}")
        self._fit_objects = {"law": law, "variable": variable, **self._template(pool)}
        try:
            boot = lawfit.bootstrap(x, None, y, law="kaplan-n", n=BOOTSTRAP_N, irreducible=irreducible, recheck=1)
            s = boot.samples
            curves = (s["E"][:, None] if irreducible else 0.0) + s["A"][:, None] * grid[None, :] ** -s["alpha"][:, None]
            lo, hi = np.percentile(curves, [2.5, 97.5], axis=0)
            out["band"] = {"x": grid.tolist(), "lo": lo.tolist(), "hi": hi.tolist()}
            self._fit_objects["band"] = (grid, lo, hi)
            a = boot.intervals["alpha"]
            notes.append(f"α = {a.estimate:.3g} (95% interval {a.low:.3g} to {a.high:.3g}, {boot.n_converged} "
                         f"bootstrap refits)")
        except Exception as e:  # a band is a bonus; the fit stands without it
            notes.append(f"no interval band ({e})")
        if pool["tokens_per_param"] > 0:
            notes.append(f"no Chinchilla L(N, D): this family ties D to N (D = {pool['tokens_per_param']:g} x N), so "
                         "the two cannot be told apart; an IsoFLOP sweep varies them apart")
        else:
            self._fit_chinchilla(rows, out, notes)
        self.state.fit = out
        if not quiet:
            self.state.notice = f"fitted {out['equation']}"
        return out

    def _grid(self, x, variable: str) -> np.ndarray:
        """Where to draw a law: from below the smallest point to 10x the largest (and the prediction)."""
        grid = np.geomspace(float(np.min(x)) / 1.5, float(np.max(x)) * 10, 60)
        pred = self.state.prediction
        if pred and pred.get("variable") == variable and pred.get("x"):
            grid = np.geomspace(min(grid[0], pred["x"] / 1.5), max(grid[-1], pred["x"] * 1.5), 60)
        return grid

    def _template(self, pool: dict) -> dict:
        """What an extrapolation needs to build a member of the fitted family: its largest run's
        config and the family's tokens when all its runs share one number."""
        rows = pool["rows"] or pool["checked"]
        if not rows:
            return {}
        big = max(rows, key=lambda r: (r["params_total"], -r["seed"]))
        tokens = {r["planned_tokens"] for r in rows}
        return {"family": pool["family"], "template": self._config(big),
                "tokens": tokens.pop() if len(tokens) == 1 else None}

    def _fit_family_law(self, pool: dict, out: dict, quiet: bool) -> dict | None:
        """A ladder family's L(N) (lab.laws.fit_family): fitted on the smaller sizes, checked on the
        `state.holdout` largest, with the reasons to doubt it in words."""
        rows = pool["rows"]
        results = [self._records[r["run_id"]].result for r in rows
                   if r["run_id"] in self._records and self._records[r["run_id"]].result is not None]
        notes = out["notes"] = self._scope_notes(pool, len(results))
        k = int(self.state.holdout)
        try:
            law = laws.fit_family(results, holdout=k, bootstrap=LAW_BOOTSTRAP)
        except (ConfigError, ValueError) as e:
            self.state.fit = out
            self._fit_objects = {}
            if not quiet:
                self.report(e, "fit")
            return None
        Ns = [z.N for z in law.fitted] + [p.N for p in law.held_out]
        grid = self._grid(Ns, "N")
        out.update(equation=law.equation(), law="family", label=law.label, holdout=k, trusted=law.trusted,
                   warnings=list(law.warnings), confidence=law.confidence,
                   curve={"x": grid.tolist(), "y": law.fit.predict(grid).tolist()},
                   held_out=[{key: (_num(v) if isinstance(v, float) else v) for key, v in p.to_dict().items()}
                             for p in law.held_out],
                   sizes=[{"width": z.width, "depth": z.depth, "N": z.N, "D": z.D, "mean": z.mean, "sd": _num(z.sd),
                           "seeds": len(z.losses), "role": "fitted"} for z in law.fitted]
                   + [{"width": p.width, "depth": p.depth, "N": p.N, "D": p.D, "mean": _num(p.measured),
                       "sd": _num(p.sd), "seeds": p.seeds, "role": "held out"} for p in law.held_out])
        s = law.samples
        if len(s.get("A", ())):
            curves = s["E"][:, None] + s["A"][:, None] * grid[None, :] ** -s["alpha"][:, None]
            q = 100 * np.array([(1 - law.confidence) / 2, (1 + law.confidence) / 2])
            lo, hi = np.percentile(curves, q, axis=0)
            out["band"] = {"x": grid.tolist(), "lo": lo.tolist(), "hi": hi.tolist()}
        notes[0] = (f"fitted on {sum(len(z.losses) for z in law.fitted)} run(s) at the {len(law.fitted)} smallest "
                    f"size(s) of {pool['scope']}: {law.label}")
        if law.held_out:
            notes.insert(1, f"the {len(law.held_out)} largest size(s) held out and predicted (table below); the "
                            f"largest error {law.max_abs_rel_error:.1%}")
        a = law.intervals["alpha"]
        notes.append(f"α = {a.estimate:.3g} ({law.confidence:.0%} interval {a.low:.3g} to {a.high:.3g}, from "
                     f"resampling {law.interval_from})")
        notes.append(f"no Chinchilla L(N, D): this family ties D to N (D = {law.tokens_per_param:g} x N), so the two "
                     "cannot be told apart; an IsoFLOP sweep varies them apart")
        self._fit_objects = {"law": law.fit, "family_law": law, "variable": "N", **self._template(pool)}
        self.state.fit = out
        if not quiet:
            self.state.notice = f"fitted {out['equation']}" + (
                f"; the held-out sizes were predicted within {law.max_abs_rel_error:.1%}" if law.held_out else "")
        return out

    def _fit_chinchilla(self, rows: list, out: dict, notes: list) -> None:
        N = np.array([float(r["params_total"]) for r in rows])
        D = np.array([float(r["tokens"]) for r in rows])
        y = np.array([float(r["eval_loss"]) for r in rows])
        pairs = len({(n, d) for n, d in zip(N, D)})
        if pairs < 6 or len(np.unique(N)) < 2 or len(np.unique(D)) < 2:
            notes.append(f"Chinchilla L(N, D) needs 6 runs with distinct (N, D) varying both (have {pairs}); "
                         "an IsoFLOP sweep gives them")
            return
        try:
            ch = lawfit.fit_chinchilla(N, D, y)
            C = np.geomspace(float((N * D).min() * 6), float((N * D).max() * 6 * 100), 40)
            alloc = lawfit.compute_optimal(ch, C)
        except (ValueError, TypeError) as e:
            notes.append(f"no Chinchilla fit: {e}")
            return
        self._fit_objects["chinchilla"] = ch
        out["chinchilla"] = ch.equation()
        L = ch.predict(alloc.N_opt, alloc.D_opt)
        x = {"N": alloc.N_opt, "D": alloc.D_opt, "C": C}[out["variable"]]
        out["frontier"] = {"x": np.asarray(x).tolist(), "y": np.asarray(L).tolist()}
        notes.append(f"compute-optimal (dashed, with C ≈ 6ND): N ∝ C^{ch.a:.2f}, D ∝ C^{ch.b:.2f}")

    @reported
    def budget(self, flops: float) -> None:
        """The budget calculator: with C FLOPs, train N parameters on D tokens, predicted loss L."""
        try:
            C = fields.number(flops) if isinstance(flops, str) else float(flops)
            if not (math.isfinite(C) and C > 0):
                raise ValueError(f"a compute budget must be a positive number of FLOPs, got {flops!r}")
            ch = self._fit_objects.get("chinchilla")
            law = self._fit_objects.get("law")
            if ch is not None:
                a = lawfit.compute_optimal(ch, C)
                N, D = float(a.N_opt), float(a.D_opt)
                L = float(ch.predict(N, D))
                text = (f"With C = {C:.3g} FLOPs train N ≈ {fmt_count(N)} parameters on D ≈ {fmt_count(D)} tokens "
                        f"({D / N:.3g} tokens per parameter, C ≈ 6ND): predicted loss L ≈ {L:.3f} nats/token.")
            elif law is not None and self._fit_objects.get("variable") == "C":
                text = (f"With C = {C:.3g} FLOPs the power law predicts L ≈ {float(law.predict(C)):.3f} nats/token. "
                        "How to split C into N and D needs a Chinchilla fit (6 runs varying N and D).")
            else:
                raise ValueError("the budget calculator needs a fit: a Chinchilla fit (run an IsoFLOP sweep) or a "
                                 "power law in C (Scaling: x = C, then Fit)")
        except ValueError as e:
            self.state.budget_text = ""
            return self.report(e, "budget")
        self.state.budget_text = text

    @reported
    def predict(self, width: int, depth: int) -> dict | None:
        """Extrapolate: the loss the current fit predicts for a model not trained yet, built as a
        member of the fitted family (its runs' config with this width and depth; tokens follow the
        family's tokens per parameter, else the form's Data (tokens)). `train_prediction` then
        trains it to check; the check's runs stay out of the law they check."""
        law = self._fit_objects.get("law")
        if law is None or "template" not in self._fit_objects:
            return self.report("fit a law first (Scaling: Fit), then predict a bigger model")
        variable, family = self._fit_objects["variable"], self._fit_objects["family"]
        try:
            from lab.training import check_memory
            cfg = self._fit_objects["template"].replace(model__width=int(width), model__depth=int(depth))
            if not cfg.tokens_per_param:
                tokens = self._fit_objects["tokens"] if variable != "D" else None
                cfg = cfg.replace(tokens=int(tokens or round(self.state.form["tokens"])))
            check_memory(cfg, 1)
        except (ConfigError, ValueError) as e:
            return self.report(e, "predict")
        size = (cfg.model.width, cfg.model.depth, cfg.tokens_trained)
        pred = {"run_id": cfg.run_id, "config": cfg.to_dict(), "family": family, "size": list(size),
                "variable": "", "actual": None}
        if any(r["family"] == family and _size(r) == size and r["status"] == "done" for r in self.state.runs):
            self.state.prediction = pred             # this size was trained: fit again without it, then predict
            self.fit(variable, quiet=True)
            law = self._fit_objects.get("law")
            if law is None:
                self.state.prediction = {}
                return self.report("predict: without the runs of this size the family has too few sizes left to fit; "
                                   "predict a model not trained yet")
        counts = counting.param_counts(cfg.model)
        x = float({"N": counts.total, "D": cfg.tokens_trained, "C": counting.run_flops(cfg)}[variable])
        data = (f"D = {cfg.tokens_per_param:g} x N = {fmt_count(cfg.tokens_trained)} tokens" if cfg.tokens_per_param
                else f"D = {fmt_count(cfg.tokens_trained)} tokens")
        text = (f"predicted loss for width {width}, depth {depth} (N = {fmt_count(counts.total)} parameters, {data}"
                + (f", C = {x:.3g} FLOPs" if variable == "C" else "") + ")")
        family_law = self._fit_objects.get("family_law")
        low = high = None
        if family_law is not None:
            p = family_law.predict(counts.total)
            loss, low, high = p.predicted, _num(p.low), _num(p.high)
            text += f": {loss:.3f} nats/token"
            if low is not None:
                text += f" ({family_law.confidence:.0%} interval {low:.3f} to {high:.3f})"
            if family_law.warnings:
                text += f"; mind the {len(family_law.warnings)} reason(s) to doubt the law, above"
        else:
            loss = float(law.predict(x))
            text += f": {loss:.3f} nats/token"
            band = self._fit_objects.get("band")
            if band is not None and band[0][0] <= x <= band[0][-1]:
                low, high = float(np.interp(x, band[0], band[1])), float(np.interp(x, band[0], band[2]))
                text += f" (95% band {low:.3f} to {high:.3f})"
        self.state.prediction = {**pred, "x": x, "loss": float(loss), "low": low, "high": high, "variable": variable,
                                 "base": text, "text": text, "rel_error": None}
        self._check_prediction()
        return self.state.prediction

    @reported
    def train_prediction(self) -> asyncio.Task | None:
        pred = self.state.prediction
        if not pred or pred.get("loss") is None:
            return self.report("make a prediction first (width and depth, then Predict)")
        return self.start_training(RunConfig.from_dict(pred["config"]))

    def _check_prediction(self) -> None:
        """Once the predicted model is trained: measured against predicted (the prediction was made
        before it trained, by a law fitted without it)."""
        pred = self.state.prediction
        if not pred or pred.get("loss") is None:
            return
        row = next((r for r in self.state.runs if r["run_id"] == pred["run_id"] and r["status"] == "done"), None)
        if row is None or not row.get("eval_loss"):
            return
        actual = float(row["eval_loss"])
        err = (pred["loss"] - actual) / actual
        inside = ""
        if pred.get("low") is not None and pred.get("high") is not None:
            inside = (" (inside its interval)" if pred["low"] <= actual <= pred["high"]
                      else " (outside its interval)")
        self.state.prediction = {**pred, "actual": actual, "rel_error": err,
                                 "text": pred.get("base", pred["text"]) + f" — measured {actual:.3f}: the prediction "
                                 f"was off by {err:+.1%}{inside}"}
