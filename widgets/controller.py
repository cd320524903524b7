"""The app's actions: the form, uploads, training and sweeps, the runs table and sampling.

`Controller` is the only object of `widgets` that calls `lab`; it writes `AppState`, views observe.
Every action shares the same three things -- the run store, the one background job and the error
area -- so they live on one object, in rooms of one concept each: this module (the form, train
and sweep actions, runs, sampling), `widgets.jobs` (the background job machinery, a mixin) and
`widgets.scaling` (families, fits, budget and predictions, a mixin); the words it shows come from
`widgets.text`. Public actions are `@reported`: an exception shows in the error area, in words.
"""

import asyncio
import base64
import os
import re
import tempfile
import threading
import time
import traceback

from lab import counting, family as lfamily, sweep as lsweep
from lab.config import ConfigError, RunConfig
from widgets import fields
from widgets.jobs import Jobs
from widgets.scaling import ScalingActions
from widgets.state import AppState
from widgets.text import fmt_bytes, fmt_count, in_words, reported, run_label, when_words

MAX_UPLOAD_BYTES = 20 << 20     # 20 MB of text is plenty for a byte-level model in a classroom
QUICK_LADDER_WIDTHS = (8, 12, 16, 20, 24, 32)   # quick mode: a ladder of tiny models, seconds each


class Controller(Jobs, ScalingActions):
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
        """Set the page from its query string (`?width=256&depth=4`; Voila hands it to the kernel as
        $QUERY_STRING): a preset (`preset=ladder`, the link's own settings over it), the form's
        values, hidden and locked controls (`hide=optimizer,lr&lock=width`) and a tab (`tab=scaling`).
        Bad values and unknown names are reported in the error area, never raised."""
        query = os.environ.get("QUERY_STRING", "") if query is None else query
        link = fields.parse_link(query)
        values = fields.defaults() | link.values if link.preset else link.values
        said = []
        if link.preset:
            self.state.preset = link.preset
            self.set_sweep(**fields.PRESETS[link.preset].get("sweep", {}))
            said.append(f"preset {fields.PRESETS[link.preset]['label']}")
        if values:
            self.set_values(**values)
            explicit = {k: v for k, v in link.values.items()
                        if not link.preset or fields.PRESETS[link.preset]["values"].get(k, object()) != v}
            if explicit:
                said.append(", ".join(f"{k}={v}" for k, v in explicit.items()))
        self.state.hidden, self.state.locked = list(link.hide), list(link.lock)
        self.state.share_options = {"hide": list(link.hide), "lock": list(link.lock), "tab": link.tab}
        self._form_changed()
        if link.hide:
            said.append("hidden: " + ", ".join(link.hide))
        if link.lock:
            said.append("locked: " + ", ".join(link.lock))
        if link.tab:
            self.open_tab(link.tab)
            said.append(f"opens the {fields.TABS[link.tab]} tab")
        if said:
            self.state.notice = "settings from the link: " + "; ".join(said)
        if link.errors:
            self.report("the link's settings were not all used: " + "; ".join(link.errors))

    @reported
    def apply_preset(self, name: str) -> None:
        """Set the form to a named preset (`widgets.fields.PRESETS`) over the defaults, its sweep
        inputs, and open its tab. Locked controls keep their values (the link fixed them)."""
        if not name:
            return
        try:
            key = fields.preset_key(name)
        except ValueError as e:
            return self.report(e)
        preset = fields.PRESETS[key]
        values = {k: v for k, v in fields.preset_values(key).items() if k not in self.state.locked}
        self.state.preset = key
        self.set_sweep(**preset.get("sweep", {}))
        self.set_values(**values)
        if preset.get("tab"):
            self.open_tab(preset["tab"])
        kept = [k for k in self.state.locked if k in preset["values"]]
        self.state.notice = (f"preset {preset['label']}: {preset['help']}"
                             + (f" (locked, kept as they were: {', '.join(kept)})" if kept else ""))

    @reported
    def open_tab(self, name: str) -> None:
        """Open one of the app's tabs (`widgets.fields.TABS`: sweep, scaling, runs, sample, share)."""
        try:
            self.state.tab = fields.tab_key(name)
        except ValueError as e:
            self.report(e)

    @reported
    def set_share(self, *, hide=None, lock=None, tab: str | None = None) -> None:
        """The Share tab's choices: the controls its link hides and locks, and the tab it opens."""
        opts = dict(self.state.share_options)
        try:
            for key, names in (("hide", hide), ("lock", lock)):
                if names is not None:
                    unknown = [n for n in names if n not in fields.BY_NAME]
                    if unknown:
                        raise ValueError(f"cannot {key} {', '.join(map(repr, unknown))}: not a control of the form; "
                                         f"known: {', '.join(fields.BY_NAME)}")
                    opts[key] = list(names)
            if tab is not None:
                opts["tab"] = fields.tab_key(tab) if tab else ""
        except ValueError as e:
            return self.report(e)
        self.state.share_options = opts
        self.state.share = self._share_link()

    def _share_link(self) -> str:
        o = self.state.share_options
        return fields.format_query(self.state.form, o.get("hide", ()), o.get("lock", ()), o.get("tab", ""))

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
        st.share = self._share_link()
        if st.preset and any(st.form.get(k) != v for k, v in fields.PRESETS[st.preset]["values"].items()):
            st.preset = ""                 # changed since: the Preset dropdown can set it again
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

    # --- training and sweeps (the job itself: widgets.jobs) -------------------------------------

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
    def sample(self, run_id: str, prompt: str = "", length: int = 200,
               temperature: float = 0.8) -> asyncio.Task | None:
        """Text from a stored run's weights (the model continues `prompt`) into `state.sample_text`;
        an error goes to the error area. Inside a kernel (a running event loop) the model runs in a
        worker thread and this returns that task; without an event loop it samples at once and
        returns None. Either way the text is read from `state.sample_text`, never from the return."""
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
            self.report(e, "sampling")
        return None
