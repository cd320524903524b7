"""The run form: one widget per field of `widgets.fields`, readouts, and Train / Stop with a progress bar.

Widgets write through the controller (`set_values`) and show the state (`form`, `readouts`,
`config_error`, `job`, `progress`); a link's settings therefore reach the widgets the same way
a student's clicks reach the controller. The Preset dropdown on top sets the whole form
(`apply_preset`); a link's `hidden` and `locked` controls are hidden or disabled here.
"""

import html
import math

import ipywidgets as ipw

from lab.i18n import N_, _
from lab.schema import FORM_SECTIONS
from widgets import fields
from widgets.controller import Controller
from widgets.form import MAX_UPLOAD_BYTES

STYLE = {"description_width": "110px"}
WIDTH = "340px"
SECTIONS = tuple((title, tuple(f.name for f in fields.FIELDS if f.section == title))   # from lab.schema
                 for title in FORM_SECTIONS)
HELP_STYLE = "color:#333;font-size:90%;background:#f6f6f6;padding:4px"   # a section's controls explained
SECTION_HELP = {      # marked: shown as _(SECTION_HELP[title]); the titles are lab.schema's (marked there)
    "Model": N_("Bigger models (width, depth) have more parameters N; they learn more from the same data but cost "
                "more compute per token."),
    "Data": N_("D is how many tokens the model reads. Loss falls as a power law in N and D until one of them runs "
               "out. Tokens per parameter ties D to the model's size (20: compute-optimal)."),
    "Optimizer": N_("How the weights move. If the loss shoots up, lower the learning rate."),
    "Run": N_("Several seeds show how much of a difference is luck."),
}
READOUTS = ((N_("Size"), "params"), (N_("Compute"), "flops"), (N_("Data/size"), "tokens_per_param"),
            (N_("Time"), "time"), (N_("Memory"), "memory"))      # the readouts' rows: (label, key)


def show_value(w: ipw.ValueWidget, value) -> None:
    """Set a control to `value`, widening its range first when the value lies beyond it (a link
    may ask for any value the config accepts, beyond the slider's suggested range)."""
    if isinstance(w, ipw.FloatLogSlider) and isinstance(value, (int, float)) and value > 0:
        w.max, w.min = max(w.max, math.log10(value)), min(w.min, math.log10(value))
    elif hasattr(w, "max") and isinstance(value, (int, float)) and not isinstance(value, bool):
        w.max, w.min = max(w.max, value), min(w.min, value)
    w.value = value


def field_widget(f: fields.Field, value) -> ipw.ValueWidget:
    """The widget for one field: labelled, with its help as a tooltip."""
    kw = dict(description=_(f.label), tooltip=_(f.help), style=STYLE, layout=ipw.Layout(width=WIDTH))   # its own
    # layout: a link hides one control by its layout's display
    if f.kind == "choice":
        labels = fields.LABELS.get(f.name, {})
        # a choice's label: its words translated (fields.LABELS, marked); a bare value (adamw, 64) as it is
        return ipw.Dropdown(options=[(_(labels[c]) if c in labels else str(c), c) for c in f.choices], value=value,
                            **kw)
    if f.log:
        return ipw.FloatLogSlider(value=value, base=10, min=math.log10(f.low), max=math.log10(f.high), step=0.05,
                                  readout_format=".3g", continuous_update=False, **kw)
    if f.kind == "float" and f.step is not None:     # the control's kind and step: the settings table's `step`
        return ipw.BoundedFloatText(value=value, min=f.low, max=f.high, step=f.step, **kw)
    if f.kind == "float":
        return ipw.FloatSlider(value=value, min=f.low, max=f.high, step=0.01, continuous_update=False, **kw)
    if f.step is not None:
        return ipw.IntSlider(value=value, min=int(f.low), max=int(f.high), step=int(f.step),
                             continuous_update=False, **kw)
    return ipw.BoundedIntText(value=value, min=int(f.low), max=int(f.high), **kw)


class ConfigForm(ipw.VBox):
    """The config form with its readouts; `actions` holds Train, Stop and the progress bar (placed by the app)."""

    def __init__(self, controller: Controller):
        self.controller = c = controller
        st = c.state
        presets = [(_("(choose one)"), ""), *((fields.preset_label(k), k) for k in fields.PRESETS)]
        self.preset = ipw.Dropdown(options=presets,
                                   value=st.preset, description=_("Preset"), tooltip=fields.preset_help(), style=STYLE,
                                   layout=ipw.Layout(width=WIDTH))
        self.preset.add_class("lab-preset")
        # Help as text as well as on hover: a touch screen shows no tooltips
        self.explain = ipw.ToggleButton(value=False, description=_("Explain the controls"), icon="question",
                                        tooltip=_("Show what each control does as text under its section (a "
                                                  "touch screen shows no tooltips)"), layout=ipw.Layout(width="200px"))
        self.explain.add_class("lab-explain")
        self.explain.observe(lambda change: self._show_help(), names="value")
        self.preset.observe(lambda change: c.form.apply_preset(change.new) if change.new else None, names="value")
        self.inputs = {f.name: field_widget(f, st.form[f.name]) for f in fields.FIELDS}
        for name, w in self.inputs.items():
            w.add_class(f"lab-{name}")          # stable hooks for the browser test and for CSS
            w.observe(lambda change, name=name: c.form.set_values(**{name: change.new}), names="value")
        self.upload = ipw.FileUpload(accept=".txt,text/plain", multiple=False, description=_("Upload text"),
                                     tooltip=_("A UTF-8 text file, at most {mb} MB; the model learns to write like "
                                               "it").format(mb=MAX_UPLOAD_BYTES >> 20),
                                     layout=ipw.Layout(width="200px", display="none"))
        self.upload.observe(lambda change: c.form.upload(*_uploaded(change.new)) if change.new else None, names="value")
        self.readouts = ipw.HTML()
        self.readouts.add_class("lab-readouts")
        self.problem = ipw.HTML()
        self.train = ipw.Button(description=_("Train"), button_style="success", icon="play",
                                tooltip=_("Train this model now; the curve appears on the right as it learns. A run "
                                          "the store already holds is shown at once, not trained again"))
        self.again = ipw.Button(description=_("Train again"), icon="repeat", layout=ipw.Layout(display="none"),
                                tooltip=_("Train this model anew as a new attempt; the finished run in the store is "
                                          "kept as it is, and the new one is stored beside it"))
        self.stop = ipw.Button(description=_("Stop"), button_style="danger", icon="stop", disabled=True,
                               tooltip=_("Stop after the current chunk of steps; the run is kept, marked cancelled"))
        self.train.add_class("lab-train")
        self.again.add_class("lab-train-again")
        self.stop.add_class("lab-stop")
        self.train.on_click(lambda _b: c.train.start())
        self.again.on_click(lambda _b: c.train.again())
        self.stop.on_click(lambda _b: c.train.stop())
        self.bar = ipw.FloatProgress(value=0.0, min=0.0, max=1.0, layout=ipw.Layout(width="260px"))
        self.status = ipw.Label("")
        self.status.add_class("lab-status")
        sections, self.sections, self.helps = [], {}, {}
        for title, names in SECTIONS:
            items = [self.inputs[n] for n in names]
            if title == "Data":
                items.append(self.upload)
            self.helps[title] = ipw.HTML(layout=ipw.Layout(width="340px", display="none"))
            self.helps[title].add_class("lab-help")
            items.append(self.helps[title])
            sections.append(ipw.VBox([ipw.HTML(f"<b>{html.escape(_(title))}</b> <span style='color:#666;font-size:90%'>"
                                               f"{html.escape(_(SECTION_HELP[title]))}</span>",
                                               layout=ipw.Layout(width="340px")), *items]))
            self.sections[title] = sections[-1]
        # Train, Stop and the progress go above the figure (app.py), where the eyes are while it trains
        self.actions = ipw.HBox([self.train, self.again, self.stop, self.bar, self.status],
                                layout=ipw.Layout(align_items="center", flex_flow="row wrap"))
        # never narrower than its controls: when the page is narrow the app wraps the plots below
        # the form instead of squeezing the form under them (JupyterLab with its side panel open)
        super().__init__([self.preset, self.explain, *sections, self.problem, self.readouts],
                         layout=ipw.Layout(width="360px", min_width="360px", flex="0 0 360px"))
        for name, fn in (("form", self._show_form), ("readouts", self._show_readouts),
                         ("config_error", self._show_problem), ("job", self._show_job),
                         ("progress", self._show_progress), ("stored", self._show_job), ("opened", self._show_job),
                         ("preset", self._show_preset), ("hidden", self._show_access), ("locked", self._show_access)):
            st.observe(lambda change, fn=fn: fn(), names=name)
        st.observe(lambda change: self._show_help(), names=["hidden", "form"])
        for fn in (self._show_form, self._show_readouts, self._show_problem, self._show_job, self._show_progress,
                   self._show_preset, self._show_access):
            fn()

    def _show_help(self):
        """Each section's controls explained as text (label: tooltip) while Explain is on; hidden
        controls are left out."""
        hidden = self.controller.state.hidden
        for title, names in SECTIONS:
            lines = "".join(f"<div style='margin:2px 0'><b>{html.escape(_(fields.BY_NAME[n].label))}</b>: "
                            f"{html.escape(_(fields.BY_NAME[n].help))}</div>" for n in names
                            if n not in hidden and fields.shown(n, self.controller.state.form))
            self.helps[title].value = f"<div style='{HELP_STYLE}'>{lines}</div>"
            self.helps[title].layout.display = "" if self.explain.value and lines else "none"

    def _show_preset(self):
        want = self.controller.state.preset
        if self.preset.value != want:
            self.preset.value = want

    def _show_access(self):
        """A link's hidden controls are not shown (nor a section whose controls all are); its
        locked ones are shown, disabled."""
        st = self.controller.state
        for name, w in self.inputs.items():
            w.layout.display = "" if name not in st.hidden and fields.shown(name, st.form) else "none"
            w.disabled = name in st.locked
        for title, names in SECTIONS:
            self.sections[title].layout.display = "none" if names and set(names) <= set(st.hidden) else ""

    def _show_form(self):
        form = self.controller.state.form
        for name, w in self.inputs.items():
            if name in form and w.value != form[name]:
                show_value(w, form[name])
        self.upload.layout.display = "" if form.get("data") == "file" else "none"
        self._show_access()                    # a control shown for some values only (fields.shown)

    def _show_readouts(self):
        r = self.controller.state.readouts
        if not r:
            self.readouts.value = ""
            return
        rows = "".join(f"<tr><td style='padding-right:8px;color:#555'>{_(k)}</td><td>{html.escape(r[key])}</td></tr>"
                       for k, key in READOUTS if key in r)
        self.readouts.value = f"<table style='font-size:90%;width:340px'>{rows}</table>"

    def _show_problem(self):
        msg = self.controller.state.config_error
        cannot = _("Cannot train:")
        self.problem.value = (f"<div style='color:#a00;background:#fee;padding:4px 6px;border-radius:4px;width:330px'>"
                              f"<b>{cannot}</b> {html.escape(msg)}</div>" if msg else "")
        self._show_job()

    def _show_job(self):
        st = self.controller.state
        self.train.disabled = bool(st.job) or bool(st.config_error) or not st.opened
        self.again.disabled = self.train.disabled
        self.again.layout.display = "" if st.stored and not st.config_error else "none"
        self.stop.disabled = not st.job

    def _show_progress(self):
        p = self.controller.state.progress
        self.bar.value = float(p.get("fraction", 0.0))
        self.status.value = p.get("text", "")


def _uploaded(value) -> tuple[str, bytes]:
    """(name, bytes) of FileUpload's value (ipywidgets 8: a tuple of dicts with a memoryview)."""
    item = value[0]
    return item["name"], bytes(item["content"])
