"""The app's panels besides the run form: messages, the plot's toggles, sweeps, scaling, the run
table, text sampling and the share link. Each panel shows the state and calls the controller."""

import html

import ipywidgets as ipw

from lab.i18n import N_, _
from lab.plans import LADDER_LR
from widgets import fields
from widgets.controller import Controller
from widgets.text import epochs_flag, fmt_count, status_words

STYLE = {"description_width": "120px"}
TEXT = ipw.Layout(width="420px")
# how a page's role reads (the queue keeps the English word; a run's status: widgets.text.status_words)
ROLES = {"student": N_("student"), "teacher": N_("teacher")}


def _button(description: str, tooltip: str, on_click, style: str = "", icon: str = "", hook: str = "") -> ipw.Button:
    b = ipw.Button(description=description, tooltip=tooltip, button_style=style, icon=icon)
    b.on_click(on_click)
    if hook:
        b.add_class(hook)          # a stable hook for the browser test and for CSS
    return b


def _observe(state, names: tuple[str, ...], fn) -> None:
    for name in names:
        state.observe(lambda _change: fn(), names=name)
    fn()


class Messages(ipw.VBox):
    """The error area (every error in words) and the last notice."""

    def __init__(self, c: Controller):
        self.c = c
        self.error = ipw.HTML()
        self.notice = ipw.HTML()
        self.dismiss = _button(_("Dismiss"), _("Hide this error"), lambda _b: c.clear_error(), icon="times")
        self.error_box = ipw.HBox([self.error, self.dismiss], layout=ipw.Layout(display="none"))
        super().__init__([self.error_box, self.notice])
        _observe(c.state, ("error", "notice"), self._show)

    def _show(self):
        st = self.c.state
        problem = _("Problem:")           # (marked outside the f-string: Babel does not read into one)
        self.error.value = (f"<div class='lab-error' style='color:#900;background:#fee;border:1px solid #d99;"
                            f"padding:6px 10px;border-radius:4px;max-width:900px'><b>{problem}</b> "
                            f"{html.escape(st.error)}</div>")
        self.error_box.layout.display = "" if st.error else "none"
        self.notice.value = (f"<div class='lab-notice' style='color:#333;font-size:90%'>{html.escape(st.notice)}</div>"
                             if st.notice else "")


class PlotToolbar(ipw.HBox):
    """The live panel's x axis (steps, tokens, FLOPs) and log-log switch."""

    def __init__(self, c: Controller):
        view = c.state.view
        self.x_axis = ipw.ToggleButtons(options=[(_("steps"), "steps"), (_("tokens"), "tokens"), ("FLOPs", "flops")],
                                        value=view["x_axis"], description=_("x axis"),
                                        style={"button_width": "70px", "description_width": "50px"},
                                        tooltips=[_("optimizer steps"), _("tokens seen (D)"),
                                                  _("training compute (C)")])
        self.log_scale = ipw.Checkbox(value=view["log"], description=_("log-log"), indent=False,
                                tooltip=_("Power laws are straight lines on log-log axes"))
        self.x_axis.observe(lambda change: c.runs.set_view(x_axis=change.new), names="value")
        self.log_scale.observe(lambda change: c.runs.set_view(log=change.new), names="value")
        super().__init__([self.x_axis, self.log_scale])


class SweepPanel(ipw.VBox):
    """A scaling ladder (sizes at D = R x N), a grid (widths x depths x tokens) or an IsoFLOP plan, its
    cost before it starts, Run and Stop."""

    def __init__(self, c: Controller):
        self.c = c
        s = c.sweep.values
        self.mode = ipw.ToggleButtons(options=[(_("Ladder"), "ladder"), (_("Grid"), "grid"), ("IsoFLOP", "isoflop")],
                                      value=s["mode"], description=_("Plan"), style={"description_width": "40px"},
                                      tooltip=_("What to sweep: a ladder of sizes, a grid, or IsoFLOP budgets"),
                                      tooltips=[_("a scaling ladder: models of several sizes, each trained on "
                                                  "D = R x N tokens (R tokens per parameter). One family, so a law "
                                                  "fitted to the smaller models can be checked on the larger ones"),
                                                _("every combination of widths, depths and token counts"),
                                                _("for each compute budget C, several model sizes trained on D = C / "
                                                  "(FLOPs per token): the Chinchilla experiment")])
        self.ladder_widths = ipw.Text(value=s["ladder_widths"], description=_("Widths"), style=STYLE, layout=TEXT,
                                      tooltip=_("the ladder's model widths, comma-separated; eight sizes spanning "
                                                "8x in parameters let a law be fitted on six and checked on two"))
        self.ladder_depths = ipw.Text(value=s["ladder_depths"], description=_("Depths"), style=STYLE, layout=TEXT,
                                      placeholder=_("(the form's depth)"),
                                      tooltip=_("comma-separated, e.g. 1,2: every width is trained at every depth"))
        self.tokens_per_param = ipw.Text(value=s["tokens_per_param"], description=_("Tokens per param"), style=STYLE,
                                         layout=TEXT, tooltip=_("R: each size is trained on D = R x N tokens (N: all "
                                                                "its parameters); 20 is Chinchilla's compute-optimal "
                                                                "ratio, so bigger models read more text"))
        self.ladder_seeds = ipw.BoundedIntText(value=s["ladder_seeds"], min=1, max=8, description=_("Seeds per size"),
                                               style=STYLE, tooltip=_("seeds trained at every size (from the form's "
                                               "seed); several show the spread and narrow the law's intervals"))
        self.ladder_tuned = ipw.Checkbox(value=s["ladder_tuned"], description=_("Tuned ladder settings"), indent=False,
                                         tooltip=_("On: every size uses μP with the learning rate tuned for it "
                                                   "({lr}) and a larger held-out sample, the settings "
                                                   "measured to predict (README). Off: the form's settings as they are"
                                                   ).format(lr=f"{LADDER_LR:g}"))
        self.widths = ipw.Text(value=s["widths"], description=_("Widths"), style=STYLE, layout=TEXT,
                               tooltip=_("comma-separated, e.g. 16,32,64"))
        self.depths = ipw.Text(value=s["depths"], description=_("Depths"), style=STYLE, layout=TEXT,
                               tooltip=_("comma-separated, e.g. 1,2"))
        self.tokens = ipw.Text(value=s["tokens"], description=_("Tokens"), style=STYLE, layout=TEXT,
                               placeholder=_("(the form's data size)"), tooltip=_("comma-separated, e.g. 4k,16k,64k"))
        self.budgets = ipw.Text(value=s["budgets"], description=_("Budgets (FLOPs)"), style=STYLE, layout=TEXT,
                                tooltip=_("compute budgets C, comma-separated, e.g. 1e11,1e12"))
        self.sizes = ipw.Text(value=s["sizes"], description=_("Widths per budget"), style=STYLE, layout=TEXT,
                              tooltip=_("the model widths tried at every budget, e.g. 16,32,64"))
        for name in ("mode", "widths", "depths", "tokens", "budgets", "sizes", "ladder_widths", "ladder_depths",
                     "tokens_per_param", "ladder_seeds", "ladder_tuned"):
            getattr(self, name).add_class(f"lab-sweep-{name.replace('_', '-')}")
            getattr(self, name).observe(lambda change, name=name: c.sweep.set(**{name: change.new}), names="value")
        self.mode.observe(lambda _change: self._show(), names="value")
        self._names = ("mode", "widths", "depths", "tokens", "budgets", "sizes", "ladder_widths", "ladder_depths",
                       "tokens_per_param", "ladder_seeds", "ladder_tuned")
        self.plan = ipw.HTML()
        self.plan.add_class("lab-sweep-plan")
        self.run = _button(_("Run sweep"), _("Train every planned run the store does not hold yet"),
                           lambda _b: c.sweep.start(),
                           "success", "play", "lab-sweep-run")
        self.stop = _button(_("Stop"), _("Stop after the current chunk; finished runs are kept"),
                            lambda _b: c.train.stop(), "danger", "stop", "lab-sweep-stop")
        self.ladder_box = ipw.VBox([self.ladder_widths, self.ladder_depths, self.tokens_per_param, self.ladder_seeds,
                                    self.ladder_tuned])
        self.grid_box = ipw.VBox([self.widths, self.depths, self.tokens])
        self.iso_box = ipw.VBox([self.budgets, self.sizes])
        super().__init__([ipw.HTML(_("Plan many runs at once. Other settings come from the form on the left.")),
                          self.mode, self.ladder_box, self.grid_box, self.iso_box, self.plan,
                          ipw.HBox([self.run, self.stop])])
        _observe(c.state, ("sweep_plan", "job"), self._show)

    def _show(self):
        st = self.c.state
        p = st.sweep_plan
        for name in self._names:           # a preset may have set the inputs (Controller.set_sweep)
            w, want = getattr(self, name), self.c.sweep.values.get(name)
            if want is not None and w.value != want:
                w.value = want
        for mode, box in (("ladder", self.ladder_box), ("grid", self.grid_box), ("isoflop", self.iso_box)):
            box.layout.display = "" if self.mode.value == mode else "none"
        if p.get("error"):
            why = _("Cannot plan: {error}").format(error=html.escape(p["error"]))
            self.plan.value = f"<div style='color:#a00'>{why}</div>"
        else:
            self.plan.value = f"<pre style='font-size:85%;white-space:pre-wrap'>{html.escape(p.get('text', ''))}</pre>"
        self.run.disabled = bool(st.job) or not p.get("runs")
        self.stop.disabled = not st.job


class ScalingPanel(ipw.VBox):
    """One family's final loss against N, D or C: Fit, the equation with the reasons to doubt it, the
    held-out check, the budget calculator and the extrapolation check."""

    def __init__(self, c: Controller):
        self.c = c
        self._syncing = False                 # set while the panel shows the state (not a student's choice)
        self.family = ipw.Dropdown(options=[], description=_("Family"), style=STYLE, layout=ipw.Layout(width="640px"),
                                   tooltip=_("Runs that differ only in model size, tokens and seed. A law is fitted to "
                                             "one family at a time: mixing families mixes laws"))
        self.family.add_class("lab-family")
        self.family.observe(lambda change: self._chosen(c.scaling.set_family, change.new), names="value")
        self.variable = ipw.Dropdown(options=[(_("parameters N"), "N"), (_("tokens D"), "D"), (_("compute C"), "C")],
                                     value=c.state.fit.get("variable", "N"), description=_("Loss against"),
                                     style=STYLE, tooltip=_("the x axis of the right-hand plot and of the fit"))
        self.variable.add_class("lab-variable")
        self.variable.observe(lambda change: c.scaling.set_variable(change.new), names="value")
        self.holdout = ipw.BoundedIntText(value=c.state.holdout, min=0, max=20, description=_("Hold out K largest"),
                                          style=STYLE, layout=ipw.Layout(width="200px"),
                                          tooltip=_("A ladder's law in N: fit it to all but the K largest sizes, then "
                                                    "predict those and compare with their measured loss (2 once the "
                                                    "family has 6 sizes)"))
        self.holdout.add_class("lab-holdout")
        self.holdout.observe(lambda change: self._chosen(c.scaling.set_holdout, change.new), names="value")
        self.fit = _button(_("Fit"),
                           _("Fit L = E + A·x^-α to the family's finished runs (diverged ones are left out)"),
                           lambda _b: c.scaling.fit(self.variable.value), "primary", "line-chart", "lab-fit")
        self.equation = ipw.HTML(layout=ipw.Layout(flex="1 1 55%"))
        self.warnings = ipw.HTML(layout=ipw.Layout(flex="1 1 45%"))
        self.held_out = ipw.HTML()
        self.budget = ipw.Text(value="1e15", description=_("Budget C (FLOPs)"), style=STYLE,
                               tooltip=_("a compute budget in FLOPs, e.g. 1e15"))
        self.calc = _button(_("Calculate"), _("Best model size and data for this budget, and its predicted loss"),
                            lambda _b: c.scaling.budget(self.budget.value))
        self.budget_out = ipw.HTML()
        self.width = ipw.BoundedIntText(value=256, min=8, max=16384, description=_("Bigger width"), style=STYLE,
                                        tooltip=_("a model you have not trained yet"))
        self.depth = ipw.BoundedIntText(value=4, min=1, max=256, description=_("Bigger depth"), style=STYLE,
                                        tooltip=_("its number of blocks"))
        self.predict = _button(_("Predict"), _("Extrapolate the fitted law to this model (the family's setup with "
                                               "this width and depth)"),
                               lambda _b: c.scaling.predict(self.width.value, self.depth.value), hook="lab-predict")
        self.check = _button(_("Train it"), _("Train the predicted model and compare prediction and measurement; it "
                                              "stays out of the law it checks"),
                             lambda _b: c.scaling.train_prediction(), "success", "play", "lab-check")
        self.prediction = ipw.HTML()
        super().__init__([self.family, ipw.HBox([self.variable, self.holdout, self.fit]),
                          ipw.HBox([self.equation, self.warnings]), self.held_out,
                          ipw.HTML("<b>" + _("Budget calculator") + "</b>"), ipw.HBox([self.budget, self.calc]),
                          self.budget_out,
                          ipw.HTML(_("<b>Extrapolate</b> to a model not trained yet, then check it")),
                          ipw.HBox([self.width, self.depth]), ipw.HBox([self.predict, self.check]), self.prediction])
        _observe(c.state, ("fit", "budget_text", "prediction", "job", "families", "family", "holdout"), self._show)

    def _chosen(self, action, value) -> None:
        if not self._syncing and value is not None:
            action(value)

    def _show(self):
        st = self.c.state
        fit = st.fit
        self._syncing = True
        try:
            options = [(_("{family} · {sizes}, {runs}").format(
                            family=f["label"],
                            sizes=(_("{n} size") if f["sizes"] == 1 else _("{n} sizes")).format(n=f["sizes"]),
                            runs=(_("{n} run") if f["runs"] == 1 else _("{n} runs")).format(n=f["runs"])),
                        f["key"]) for f in st.families]
            if list(self.family.options) != options:
                self.family.options = options
            keys = [k for _x, k in options]
            want = st.family if st.family in keys else None
            if self.family.value != want:
                self.family.value = want
            if self.holdout.value != st.holdout:
                self.holdout.value = min(max(st.holdout, self.holdout.min), self.holdout.max)
            if fit.get("variable") and fit["variable"] != self.variable.value:
                self.variable.value = fit["variable"]
        finally:
            self._syncing = False
        fam = next((f for f in st.families if f["key"] == st.family), None)
        self.holdout.disabled = not (fam and fam["tokens_per_param"] > 0 and self.variable.value == "N")
        parts = []
        if fit.get("equation"):
            parts.append(f"<div class='lab-equation' style='font-size:120%;color:#b22'>{html.escape(fit['equation'])}"
                         "</div>")
        if fit.get("chinchilla"):
            line = _("Chinchilla: {text}").format(text=html.escape(fit["chinchilla"]))
            parts.append(f"<div class='lab-chinchilla'>{line}</div>")
        parts += [f"<div style='font-size:90%;color:#555'>{html.escape(n)}</div>" for n in fit.get("notes", [])]
        self.equation.value = "".join(parts)
        self.warnings.value = _warnings(fit)
        self.held_out.value = _held_out_table(fit)
        self.budget_out.value = f"<div>{html.escape(st.budget_text)}</div>" if st.budget_text else ""
        self.prediction.value = f"<div class='lab-prediction'>{html.escape(st.prediction.get('text', ''))}</div>"
        self.check.disabled = bool(st.job) or st.prediction.get("loss") is None


def _warnings(fit: dict) -> str:
    """A family law's reasons to doubt it, in words, beside its equation."""
    if fit.get("law") != "family":
        return ""
    if not fit.get("warnings"):
        return ("<div class='lab-warnings' style='color:#060;padding:4px 8px'>"
                + _("Nothing found against this law (enough sizes, span, seeds and tokens; see the held-out check).")
                + "</div>")
    items = "".join(f"<li>{html.escape(w)}</li>" for w in fit["warnings"])
    doubt = _("Reasons to doubt this law:")
    return (f"<div class='lab-warnings' style='color:#7a4a00;background:#fff8e6;border:1px solid #e8c77a;"
            f"padding:4px 8px;border-radius:4px;font-size:90%'><b>{doubt}</b>"
            f"<ul style='margin:2px 0 2px 18px;padding:0'>{items}</ul></div>")


def _held_out_table(fit: dict) -> str:
    """The held-out sizes: predicted by the law fitted without them, against their measured loss."""
    rows = fit.get("held_out") or []
    if not rows:
        return ""
    pct = int(round(100 * fit.get("confidence", 0.95)))
    head = "".join(f"<th style='padding:2px 8px'>{h}</th>" for h in
                   (_("size"), "N", _("predicted ({pct}% interval)").format(pct=pct), _("measured ± sd"),
                    _("relative error")))
    body = ""
    for p in rows:
        interval = (" " + _("({low} to {high})").format(low=f"{p['low']:.3f}", high=f"{p['high']:.3f}")
                    if p.get("low") is not None else "")
        spread = (f" ± {p['sd']:.3f}" if p.get("sd") is not None else " " + _("(1 seed)") if p.get("seeds") == 1
                  else "")
        measured = f"{p['measured']:.3f}{spread}" if p.get("measured") is not None else "–"
        err = f"{p['rel_error']:+.1%}" if p.get("rel_error") is not None else "–"
        size = _("width {width}, depth {depth}").format(width=p["width"], depth=p["depth"])
        body += (f"<tr><td style='padding:2px 8px'>{size}</td>"
                 f"<td style='padding:2px 8px'>{fmt_count(p['N'])}</td>"
                 f"<td style='padding:2px 8px'>{p['predicted']:.3f}{interval}</td>"
                 f"<td style='padding:2px 8px'>{measured}</td><td style='padding:2px 8px'>{err}</td></tr>")
    label, what = _("Held out:"), _("the {n} largest size(s), predicted by the law fitted without them").format(
        n=len(rows))
    return (f"<div style='font-size:90%'><b>{label}</b> {what}"
            f"<table class='lab-heldout' style='border-collapse:collapse'><tr>{head}</tr>{body}"
            "</table></div>")


class RunsPanel(ipw.VBox):
    """The run table: select, compare, delete, export CSV."""

    COLUMNS = ((N_("run"), "run_id"), (N_("status"), "status"), (N_("arch"), "arch"), (N_("width"), "width"),
               (N_("depth"), "depth"), ("N", "params_total"), ("D", "tokens"), (N_("epochs"), "epochs"),
               ("C", "flops"), (N_("optimizer"), "optimizer"), (N_("lr"), "lr"), (N_("seed"), "seed"),
               (N_("val loss"), "eval_loss"), (N_("tokens/s"), "tokens_per_s"), (N_("time"), "wall_s"))

    def __init__(self, c: Controller):
        self.c = c
        self.select = ipw.SelectMultiple(options=[], rows=8, description=_("Runs"), style={"description_width": "50px"},
                                         layout=ipw.Layout(width="560px"),
                                         tooltip=_("Ctrl/Shift-click to choose several runs"))
        self.select.add_class("lab-runs-select")
        self.select.observe(lambda change: c.runs.select(change.new), names="value")
        self.compare = ipw.Checkbox(value=False, description=_("Plot only the selected runs"), indent=False)
        self.compare.observe(lambda change: c.runs.set_compare(change.new), names="value")
        self.delete = _button(_("Delete"), _("Delete the selected runs from the store (a student: only the runs they "
                                "asked for)"), lambda _b: c.runs.delete_selected(), "danger", "trash",
                              "lab-runs-delete")
        self.export = _button(_("Export CSV"), _("The selected runs (or all) as a CSV file"),
                              lambda _b: c.runs.export_csv(), "", "download")
        self.refresh = _button(_("Refresh"), _("Reload the run store"), lambda _b: c.runs.refresh(), "", "refresh")
        self.download = ipw.HTML()
        self.table = ipw.HTML()
        super().__init__([self.select, ipw.HBox([self.compare, self.delete, self.export, self.refresh]),
                          self.download, self.table])
        _observe(c.state, ("runs", "selected", "download"), self._show)

    def _show(self):
        st = self.c.state
        options = [(r["label"] + f" · {r['run_id'][:8]}", r["run_id"]) for r in st.runs]
        if list(self.select.options) != options:
            self.select.options = options
        chosen = tuple(i for i in st.selected if any(r["run_id"] == i for r in st.runs))
        if tuple(self.select.value) != chosen:
            self.select.value = chosen
        self.download.value = st.download
        shown = [r for r in st.runs if r["run_id"] in st.selected] or st.runs[:30]
        count = _("{n} runs in the store").format(n=len(st.runs))
        head = "".join(f"<th style='padding:2px 6px'>{_(h)}</th>" for h, _x in self.COLUMNS)
        body = "".join("<tr>" + "".join(f"<td style='padding:2px 6px'>{_cell(k, r.get(k))}</td>"
                                         for _x, k in self.COLUMNS) + "</tr>" for r in shown)
        self.table.value = (f"<div style='max-height:300px;overflow:auto'><table class='lab-runs' "
                            f"style='font-size:85%;border-collapse:collapse'><tr>{head}</tr>{body}</table></div>"
                            f"<div style='font-size:85%;color:#555'>{count}</div>")


def _cell(key: str, value) -> str:
    if value is None:
        return "–"
    if key == "run_id":
        return value[:8]
    if key in ("params_total", "tokens", "flops"):
        return fmt_count(value)
    if key in ("eval_loss",):
        return f"{value:.4f}"
    if key == "epochs":       # runs that repeat their data past 4 epochs are data-limited: flagged
        return html.escape(epochs_flag(value) or f"{value:.2g}")
    if key in ("lr",):
        return f"{value:.3g}"
    if key == "tokens_per_s":
        return f"{value:,.0f}"
    if key == "wall_s":
        return f"{value:.1f} s"
    if key == "status":
        return html.escape(status_words(str(value)))
    return html.escape(str(value))


class SamplePanel(ipw.VBox):
    """Text written by a trained model."""

    def __init__(self, c: Controller):
        self.c = c
        self.run = ipw.Dropdown(options=[], description=_("Run"), style={"description_width": "80px"},
                                layout=ipw.Layout(width="560px"), tooltip=_("a finished run (its weights are stored)"))
        self.prompt = ipw.Text(value="The ", description=_("Prompt"), style={"description_width": "80px"},
                               layout=ipw.Layout(width="560px"), tooltip=_("text for the model to continue"))
        self.length = ipw.IntSlider(value=200, min=10, max=1000, step=10, description=_("Length"),
                                    style={"description_width": "80px"}, tooltip=_("bytes to write"))
        self.temperature = ipw.FloatSlider(value=0.8, min=0.0, max=1.5, step=0.05, description=_("Temperature"),
                                           style={"description_width": "90px"},
                                           tooltip=_("0: always the likeliest next byte; 1: the model's own odds"))
        self.go = _button(_("Sample"), _("Let the model write"),
                          lambda _b: c.runs.sample(self.run.value, self.prompt.value, self.length.value,
                                                   self.temperature.value),
                          "primary", "pencil", "lab-sample")
        self.run.add_class("lab-sample-run")
        self.out = ipw.HTML()
        super().__init__([self.run, self.prompt, ipw.HBox([self.length, self.temperature]), self.go, self.out])
        _observe(c.state, ("runs", "sample_text"), self._show)

    def _show(self):
        st = self.c.state
        options = [(r["label"] + f" · {r['run_id'][:8]}", r["run_id"]) for r in st.runs
                   if r["status"] in ("done", "diverged", "cancelled") and r.get("tokens")]
        if list(self.run.options) != options:
            keep = self.run.value
            ids = [v for _x, v in options]
            self.run.options = options
            self.run.value = keep if keep in ids else (ids[0] if ids else None)   # ipywidgets 8 selects nothing
        self.out.value = (f"<pre class='lab-sample-text' style='white-space:pre-wrap;background:#f6f6f6;padding:6px;"
                          f"max-width:800px'>"
                          f"{html.escape(self.prompt.value)}<b>{html.escape(st.sample_text)}</b></pre>"
                          if st.sample_text else "")


class SharePanel(ipw.VBox):
    """The link for the current setup: a teacher hands it out as a starting point, choosing the
    controls it hides and locks and the tab it opens."""

    def __init__(self, c: Controller):
        self.c = c
        self._syncing = False
        controls = [(f"{_(f.label)} ({f.name})", f.name) for f in fields.FIELDS]
        narrow = {"description_width": "50px"}
        self.hide = ipw.SelectMultiple(options=controls, rows=6, description=_("Hide"), style=narrow,
                                       layout=ipw.Layout(width="300px"),
                                       tooltip=_("Controls the link does not show (their values still come from the "
                                                 "link); Ctrl/Shift-click to choose several"))
        self.lock = ipw.SelectMultiple(options=controls, rows=6, description=_("Lock"), style=narrow,
                                       layout=ipw.Layout(width="300px"),
                                       tooltip=_("Controls the link shows but does not let students change (their "
                                                 "value is fixed by the link); Ctrl/Shift-click to choose several"))
        self.tab = ipw.Dropdown(options=[(_("(the first)"), ""), *((_(title), key) for key, title in fields.TABS.items()
                                                               if key not in fields.TEACHER_TABS)],
                                value="", description=_("Open tab"), style={"description_width": "70px"},
                                tooltip=_("The tab the link opens"))
        for name in ("hide", "lock", "tab"):
            w = getattr(self, name)
            w.add_class(f"lab-share-{name}")
            w.observe(lambda change, name=name: self._chosen(name, change.new), names="value")
        self.text = ipw.Text(description=_("Link"), style={"description_width": "50px"},
                             layout=ipw.Layout(width="720px"),
                             tooltip=_("add this to the app's address; it sets the controls"))
        self.text.add_class("lab-share-text")
        self.link = ipw.HTML()
        super().__init__([ipw.HTML(_("Add this to the app's address to open it with the same settings. For a class, "
                                     "choose controls to hide or lock and a tab to open:")),
                          ipw.HBox([self.hide, self.lock, self.tab]), self.text, self.link])
        _observe(c.state, ("share", "share_options"), self._show)

    def _chosen(self, name, value) -> None:
        if not self._syncing:
            self.c.form.set_share(**{name: list(value) if name != "tab" else value})

    def _show(self):
        q = self.c.state.share
        o = self.c.state.share_options
        self._syncing = True
        try:
            for name in ("hide", "lock"):
                want = tuple(o.get(name, ()))
                if tuple(getattr(self, name).value) != want:
                    getattr(self, name).value = want
            if self.tab.value != o.get("tab", ""):
                self.tab.value = o.get("tab", "")
        finally:
            self._syncing = False
        self.text.value = q
        self.link.value = (f"<a class='lab-share' href='{html.escape(q)}' target='_blank'>"
                           + _("open this setup in a new tab") + "</a>")


class ClassPanel(ipw.VBox):
    """The teacher's Class tab: who is on, what trains for whom, what waits (with estimated starts),
    the limits, a button that empties the queue, and the plot of every student's live curve."""

    def __init__(self, c: Controller):
        self.c = c
        self.pages = ipw.HTML()
        self.pages.add_class("lab-class-pages")
        self.training = ipw.HTML()
        self.training.add_class("lab-class-training")
        self.waiting = ipw.HTML()
        self.waiting.add_class("lab-class-waiting")
        self.everyone = ipw.ToggleButton(value=False, description=_("Everyone's curves"), icon="users",
                                         tooltip=_("Show every student's run in training on the plot (for the "
                                                   "projector); off: this page's runs"))
        self.everyone.add_class("lab-class-everyone")
        self.everyone.observe(lambda change: c.classroom.set_plot_mode("class" if change.new else "app"),
                              names="value")
        self.clear = _button(_("Clear the queue"), _("Remove every waiting run from the queue (runs in training go on; "
                               "their students can ask again)"), lambda _b: c.classroom.clear_queue(), "danger",
                             "trash", "lab-class-clear")
        self.refresh = _button(_("Refresh"), _("Read the class again"), lambda _b: c.classroom.refresh(), "", "refresh")
        box = {"style": {"description_width": "150px"}, "layout": ipw.Layout(width="260px")}
        self.max_queued = ipw.BoundedIntText(min=0, max=1000, description=_("Runs queued per page"),
                                             tooltip=_("How many runs one student's page may have waiting at once (0: "
                                                       "no limit)"), **box)
        self.max_tokens = ipw.BoundedIntText(min=0, max=10**12, step=100_000, description=_("Tokens per run"),
                                             tooltip=_("The most training tokens a student's run may use (0: no "
                                                       "limit); bigger runs are refused with a message"), **box)
        self.max_pages = ipw.BoundedIntText(min=0, max=1000, description=_("Pages at once"),
                                            tooltip=_("The most pages open at once; the next visitor reads that the "
                                                      "class is full (0: no limit)"), **box)
        self.set_limits = _button(_("Set limits"), _("Apply these limits now (the training service enforces them)"),
                                  lambda _b: c.classroom.set_limits(max_queued=self.max_queued.value,
                                                                   max_tokens=self.max_tokens.value,
                                                                   max_pages=self.max_pages.value), "", "check",
                                  "lab-class-limits")
        super().__init__([ipw.HBox([self.everyone, self.clear, self.refresh]), self.pages, self.training,
                          self.waiting, ipw.HTML("<b>" + _("Limits") + "</b>"),
                          ipw.HBox([self.max_queued, self.max_tokens, self.max_pages, self.set_limits])])
        _observe(c.state, ("classroom", "plot_mode"), self._show)

    @staticmethod
    def _table(title: str, head: tuple, rows: list) -> str:
        if not rows:
            return "<div>" + _("{title}: none").format(title=f"<b>{html.escape(title)}</b>") + "</div>"
        cells = "".join("<tr>" + "".join(f"<td style='padding:1px 8px'>{html.escape(str(v))}</td>" for v in r)
                        + "</tr>" for r in rows)
        heads = "".join(f"<th style='text-align:left;padding:1px 8px'>{html.escape(h)}</th>" for h in head)
        return (f"<div><b>{html.escape(title)}</b><table class='lab-class-table' style='font-size:90%'>"
                f"<tr>{heads}</tr>{cells}</table></div>")

    def _show(self):
        st = self.c.state
        cl = st.classroom or {}
        self.everyone.value = st.plot_mode == "class"
        self.pages.value = self._table(_("Pages open ({n})").format(n=len(cl.get("pages", []))),
                                       (_("name"), _("role")),
                                       [(p["name"], _(ROLES[p["role"]]) if p["role"] in ROLES else p["role"])
                                        for p in cl.get("pages", [])])
        self.training.value = self._table(
            _("Training now ({n} worker(s))").format(n=cl.get("workers", 0)), (_("for"), _("run"), _("step")),
            [(t["who"], t["what"], (_("{step} of {steps} (stopping)") if t["cancelling"] else _("{step} of {steps}"))
              .format(step=f"{t['step']:,}", steps=f"{t['steps']:,}"))
             for t in cl.get("training", [])])
        self.waiting.value = self._table(_("Waiting in the queue"),
                                         (_("place"), _("for"), _("run"), _("starts in about")),
                                         [(w["place"], w["who"], w["what"], w["starts"])
                                          for w in cl.get("waiting", [])])
        limits = cl.get("limits") or {}
        for name in ("max_queued", "max_tokens", "max_pages"):
            getattr(self, name).value = int(limits.get(name) or 0)
