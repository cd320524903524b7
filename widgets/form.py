"""The run form's actions: values from the controls or a link, presets, tabs, the share link, the
readouts (size, compute, time and memory on the service's device), and uploads.

Pure of JAX: memory and time come from what the training service reports of its device
(`Session.speed`), never from this process.
"""

import hashlib
import os
import re
import tempfile

from lab import counting
from lab.config import ConfigError, RunConfig
from lab.estimate import check_memory, estimate, format_seconds
from lab import i18n
from lab.i18n import LANGS, _
from widgets import fields
from widgets.session import Session, role_for
from widgets.text import fmt_bytes, fmt_count, in_words, reported, when_words

MAX_UPLOAD_BYTES = 20 << 20     # 20 MB of text is plenty for a byte-level model in a classroom


class FormActions:
    """The form tab's logic. `on_change` callbacks run after every change of the form (the Sweep
    tab restates its plan); `on_preset` ones with a preset's sweep inputs."""

    def __init__(self, session: Session):
        self.session = session
        self.state = session.state
        self.report = session.report
        self.on_change: list = []
        self.on_preset: list = []
        self.on_lang: list = []
        self.state.form = fields.defaults()

    # --- values, links and presets ----------------------------------------------------------------

    @reported
    def set_values(self, **values) -> None:
        """New form values (from the controls or a link); recomputes config, readouts and link."""
        self.state.form = {**self.state.form, **values}
        self.changed()

    @reported
    def apply_query(self, query: str | None = None) -> None:
        """Set the page from its query string (`?width=256&depth=4`; Voila hands it to the kernel as
        $QUERY_STRING): a preset (`preset=ladder`, the link's own settings over it), the form's
        values, hidden and locked controls (`hide=optimizer,lr&lock=width`), a tab (`tab=scaling`),
        the teacher token (`teacher=`), the projector view (`view=class`) and a name (`name=`).
        Bad values and unknown names are reported in the error area, never raised."""
        query = os.environ.get("QUERY_STRING", "") if query is None else query
        link = fields.parse_link(query)
        st = self.state
        if link.lang:
            self.set_lang(link.lang)       # first: what follows is said in the link's language,
            link = fields.parse_link(query)   # its refusals too
        values = fields.defaults() | link.values if link.preset else link.values
        said = []
        role, words = role_for(link.teacher)
        self.session.role = st.role = role
        if words:
            said.append(words)
        if link.name:
            from lab.asker import clean_name
            st.name = clean_name(link.name)
        if link.preset:
            st.preset = link.preset
            for fn in self.on_preset:
                fn(fields.PRESETS[link.preset].get("sweep", {}))
            said.append(_("preset {name}").format(name=fields.preset_label(link.preset)))
        if values:
            self.set_values(**values)
            explicit = {k: v for k, v in link.values.items()
                        if not link.preset or fields.PRESETS[link.preset]["values"].get(k, object()) != v}
            if explicit:
                said.append(", ".join(f"{k}={v}" for k, v in explicit.items()))
        st.hidden, st.locked = list(link.hide), list(link.lock)
        st.share_options = {"hide": list(link.hide), "lock": list(link.lock), "tab": link.tab}
        self.changed()
        if link.hide:
            said.append(_("hidden: {names}").format(names=", ".join(link.hide)))
        if link.lock:
            said.append(_("locked: {names}").format(names=", ".join(link.lock)))
        tab = link.tab
        if link.view == "class":
            if role == "teacher":
                st.plot_mode, tab = "class", "class"
                said.append(_("the class view: every student's runs"))
            else:
                self.report(_("view=class is the teacher's view; open the teacher's link for it"))
        if tab:
            if tab in fields.TEACHER_TABS and role != "teacher":
                self.report(_("the {tab} tab is the teacher's; open the teacher's link for it").format(
                    tab=_(fields.TABS[tab])))
            else:
                self.open_tab(tab)
                said.append(_("opens the {tab} tab").format(tab=_(fields.TABS[tab])))
        if link.lang:
            said.append(_("language: {lang}").format(lang=LANGS[link.lang]))
        if said:
            st.notice = _("settings from the link: {what}").format(what="; ".join(said))
        if link.errors:
            self.report(_("the link's settings were not all used: {why}").format(why="; ".join(link.errors)))

    @reported
    def set_lang(self, lang: str) -> None:
        """The page's language (`lab.i18n.LANGS`: en, zh): every text the app writes from now on, and
        the views redraw their controls (`widgets.app.Lab` observes `state.lang`)."""
        try:
            lang = i18n.use(lang)
        except ValueError as e:
            return self.report(e)
        if self.state.lang != lang:
            self.state.lang = lang
            self.state.error = ""              # what was said before is said again, or not at all
            self.state.notice = _("language: {lang}").format(lang=LANGS[lang])
            self.session.refresh_runs()        # run labels and dates in the new language
            self.changed()
            for fn in self.on_lang:            # the scaling tab fits again: its notes in the new language
                fn()

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
        for fn in self.on_preset:
            fn(preset.get("sweep", {}))
        self.set_values(**values)
        if preset.get("tab"):
            self.open_tab(preset["tab"])
        kept = [k for k in self.state.locked if k in preset["values"]]
        self.state.notice = (_("preset {name}: {help}").format(name=fields.preset_label(key),
                                                                help=fields.preset_help(key))
                             + (_(" (locked, kept as they were: {names})").format(names=", ".join(kept)) if kept else ""))

    @reported
    def open_tab(self, name: str) -> None:
        """Open one of the app's tabs (`widgets.fields.TABS`: sweep, scaling, runs, sample, share; class
        for the teacher)."""
        try:
            key = fields.tab_key(name)
        except ValueError as e:
            return self.report(e)
        if key in fields.TEACHER_TABS and not self.session.teacher:
            return self.report(_("the {tab} tab is the teacher's").format(tab=_(fields.TABS[key])))
        self.state.tab = key

    @reported
    def set_share(self, *, hide=None, lock=None, tab: str | None = None) -> None:
        """The Share tab's choices: the controls its link hides and locks, and the tab it opens."""
        opts = dict(self.state.share_options)
        try:
            for key, names in (("hide", hide), ("lock", lock)):
                if names is not None:
                    unknown = [n for n in names if n not in fields.BY_NAME]
                    if unknown:
                        raise ValueError((_("cannot hide {names}: not a control of the form; known: {known}")
                                          if key == "hide" else
                                          _("cannot lock {names}: not a control of the form; known: {known}")).format(
                            names=", ".join(map(repr, unknown)), known=", ".join(fields.BY_NAME)))
                    opts[key] = list(names)
            if tab is not None:
                opts["tab"] = fields.tab_key(tab) if tab else ""
        except ValueError as e:
            return self.report(e)
        self.state.share_options = opts
        self.state.share = self._share_link()

    def _share_link(self) -> str:
        """The form as a link (never the teacher token: a shared link opens a student's page)."""
        o = self.state.share_options
        return fields.format_query(self.state.form, o.get("hide", ()), o.get("lock", ()), o.get("tab", ""),
                                   self.state.lang)

    # --- the config and its readouts --------------------------------------------------------------

    def build_config(self, form: dict | None = None) -> RunConfig:
        """The RunConfig the form describes. Raises ConfigError (in words) when it cannot run."""
        v = self.state.form if form is None else form
        values = {}
        for f in fields.FIELDS:                        # every form field that is a RunConfig setting
            if f.path and v.get(f.name) is not None:
                x = v[f.name]
                values[f.path] = int(round(x)) if f.kind == "int" else float(x) if f.kind == "float" else x
        if not fields.shown("vocab", v):               # byte tokens: the vocabulary is theirs, 256
            values.pop("model.vocab", None)
        if v["data"] == "file":
            if not self.state.data_path:
                raise ConfigError(_("choose a text file to upload first (Dataset: my text file)"))
            values["data.path"] = self.state.data_path
        if fields.quick():
            values |= {"eval_tokens": 4096, "evals": 4}
        return RunConfig.from_settings(values)

    def checked_config(self) -> RunConfig:
        """The form's config, also refused when it would not fit in the service's device memory or
        over the class's token limit."""
        cfg = self.build_config()
        check_memory(cfg, int(self.state.form["seeds"]), self.session.speed())
        return cfg

    def changed(self) -> None:
        """After any change of the form: the link, the config's problem or readouts, the stored state."""
        st = self.state
        st.share = self._share_link()
        if st.preset and any(st.form.get(k) != v for k, v in fields.PRESETS[st.preset]["values"].items()):
            st.preset = ""                 # changed since: the Preset dropdown can set it again
        try:
            cfg = self.checked_config()
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
            self.report(e, _("estimating the run"))
        for fn in self.on_change:
            fn()

    def _stored_words(self, cfg: RunConfig, seeds: int) -> str:
        """'' unless the store holds every seed of the form's config finished: then when, in words
        (Train shows it; Train again is offered)."""
        store = self.session.store_or_none()
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
        return _("already in the store ({status}, trained {when})").format(status=status, when=when_words(last))

    def _readouts(self, cfg: RunConfig, seeds: int) -> dict:
        counts = counting.param_counts(cfg.model)
        flops = counting.run_flops(cfg) * seeds
        speed = self.session.speed()
        records = list(self.session.records.values())
        est = estimate([cfg], records, speed)
        mem = counting.memory_bytes(cfg, seeds)
        ratio = cfg.tokens_trained / counts.total
        seconds = est.seconds * seeds if est.runs else 0.0
        return {
            "params": _("{total} parameters ({non_embedding} non-embedding)").format(
                total=fmt_count(counts.total), non_embedding=fmt_count(counts.non_embedding)),
            "flops": _("{flops} FLOPs to train ({steps} steps of {tokens} tokens)").format(
                flops=f"{flops:.3g}", steps=f"{cfg.steps:,}", tokens=f"{cfg.tokens_per_step:,}"),
            "tokens_per_param": (_("D = {ratio} x N = {tokens} tokens: the data follows the model size (Data "
                                   "(tokens) is not used)").format(ratio=f"{cfg.tokens_per_param:g}",
                                                                   tokens=fmt_count(cfg.tokens_trained))
                                 if cfg.tokens_per_param else
                                 _("{ratio} tokens per parameter (compute-optimal: about 20 at Chinchilla's scale; "
                                   "about 100 for this lab's default family at 3e11-3e12 FLOPs, measured by its "
                                   "IsoFLOP study)").format(ratio=f"{ratio:.3g}")),
            "time": (_("about {time} ({source})").format(time=format_seconds(seconds), source=est.source)
                     if est.runs else _("already in the store (Train shows it; Train again trains it anew beside it)")),
            "memory": (_("about {memory} of {total} on {device}").format(
                memory=fmt_bytes(mem), total=fmt_bytes(speed.memory_bytes), device=speed.device)
                if speed.measured else _("about {memory}").format(memory=fmt_bytes(mem))),
        }

    # --- uploads ----------------------------------------------------------------------------------

    @reported
    def upload(self, name: str, content: bytes) -> None:
        """A text file from the browser: size-checked, written to a file in the store folder
        (named by its hash, so the same text gives the same run ids), never executed."""
        try:
            if len(content) > MAX_UPLOAD_BYTES:
                raise ValueError(_("{name} is {size}, over the {limit} limit; upload an excerpt").format(
                    name=name, size=fmt_bytes(len(content)), limit=fmt_bytes(MAX_UPLOAD_BYTES)))
            try:
                bytes(content).decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(_("{name} is not UTF-8 text; save it as plain text (.txt) and upload it "
                                   "again").format(name=name)) from None
            folder = self.session.store.path / "uploads"
            folder.mkdir(exist_ok=True)
            stem = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.splitext(os.path.basename(name))[0])[:40] or "text"
            path = folder / f"{stem}-{hashlib.sha256(content).hexdigest()[:12]}.txt"
            fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
            with os.fdopen(fd, "wb") as f:
                f.write(bytes(content))
            os.replace(tmp, path)
        except (OSError, ValueError) as e:
            return self.report(e, _("upload"))
        self.state.data_path = str(path)
        self.state.notice = _("uploaded {name} ({size}); training now reads it").format(
            name=name, size=fmt_bytes(len(content)))
        self.set_values(data="file")
