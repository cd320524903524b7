"""The app's panels besides the run form: messages, the plot's toggles, sweeps, scaling, the run
table, text sampling and the share link. Each panel shows the state and calls the controller."""

import html

import ipywidgets as ipw

from lab.plans import LADDER_LR
from widgets import fields
from widgets.controller import Controller
from widgets.text import epochs_flag, fmt_count

STYLE = {"description_width": "120px"}
TEXT = ipw.Layout(width="420px")


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
        self.dismiss = _button("Dismiss", "Hide this error", lambda _: c.clear_error(), icon="times")
        self.error_box = ipw.HBox([self.error, self.dismiss], layout=ipw.Layout(display="none"))
        super().__init__([self.error_box, self.notice])
        _observe(c.state, ("error", "notice"), self._show)

    def _show(self):
        st = self.c.state
        self.error.value = (f"<div class='lab-error' style='color:#900;background:#fee;border:1px solid #d99;"
                            f"padding:6px 10px;border-radius:4px;max-width:900px'><b>Problem:</b> "
                            f"{html.escape(st.error)}</div>")
        self.error_box.layout.display = "" if st.error else "none"
        self.notice.value = (f"<div class='lab-notice' style='color:#333;font-size:90%'>{html.escape(st.notice)}</div>"
                             if st.notice else "")


class PlotToolbar(ipw.HBox):
    """The live panel's x axis (steps, tokens, FLOPs) and log-log switch."""

    def __init__(self, c: Controller):
        view = c.state.view
        self.x_axis = ipw.ToggleButtons(options=[("steps", "steps"), ("tokens", "tokens"), ("FLOPs", "flops")],
                                        value=view["x_axis"], description="x axis",
                                        style={"button_width": "70px", "description_width": "50px"},
                                        tooltips=["optimizer steps", "tokens seen (D)", "training compute (C)"])
        self.log_scale = ipw.Checkbox(value=view["log"], description="log-log", indent=False,
                                tooltip="Power laws are straight lines on log-log axes")
        self.x_axis.observe(lambda change: c.runs.set_view(x_axis=change.new), names="value")
        self.log_scale.observe(lambda change: c.runs.set_view(log=change.new), names="value")
        super().__init__([self.x_axis, self.log_scale])


class SweepPanel(ipw.VBox):
    """A scaling ladder (sizes at D = R x N), a grid (widths x depths x tokens) or an IsoFLOP plan, its
    cost before it starts, Run and Stop."""

    def __init__(self, c: Controller):
        self.c = c
        s = c.sweep.values
        self.mode = ipw.ToggleButtons(options=[("Ladder", "ladder"), ("Grid", "grid"), ("IsoFLOP", "isoflop")],
                                      value=s["mode"], description="Plan", style={"description_width": "40px"},
                                      tooltip="What to sweep: a ladder of sizes, a grid, or IsoFLOP budgets",
                                      tooltips=["a scaling ladder: models of several sizes, each trained on D = R x N "
                                                "tokens (R tokens per parameter). One family, so a law fitted to the "
                                                "smaller models can be checked on the larger ones",
                                                "every combination of widths, depths and token counts",
                                                "for each compute budget C, several model sizes trained on D = C / "
                                                "(FLOPs per token): the Chinchilla experiment"])
        self.ladder_widths = ipw.Text(value=s["ladder_widths"], description="Widths", style=STYLE, layout=TEXT,
                                      tooltip="the ladder's model widths, comma-separated; eight sizes spanning 8x in "
                                              "parameters let a law be fitted on six and checked on two")
        self.ladder_depths = ipw.Text(value=s["ladder_depths"], description="Depths", style=STYLE, layout=TEXT,
                                      placeholder="(the form's depth)",
                                      tooltip="comma-separated, e.g. 1,2: every width is trained at every depth")
        self.tokens_per_param = ipw.Text(value=s["tokens_per_param"], description="Tokens per param", style=STYLE,
                                         layout=TEXT, tooltip="R: each size is trained on D = R x N tokens (N: all "
                                                              "its parameters); 20 is Chinchilla's compute-optimal "
                                                              "ratio, so bigger models read more text")
        self.ladder_seeds = ipw.BoundedIntText(value=s["ladder_seeds"], min=1, max=8, description="Seeds per size",
                                               style=STYLE, tooltip="seeds trained at every size (from the form's "
                                               "seed); several show the spread and narrow the law's intervals")
        self.ladder_tuned = ipw.Checkbox(value=s["ladder_tuned"], description="Tuned ladder settings", indent=False,
                                         tooltip="On: every size uses μP with the learning rate tuned for it "
                                                 f"({LADDER_LR:g}) and a larger held-out sample, the settings "
                                                 "measured to predict (README). Off: the form's settings as they are")
        self.widths = ipw.Text(value=s["widths"], description="Widths", style=STYLE, layout=TEXT,
                               tooltip="comma-separated, e.g. 16,32,64")
        self.depths = ipw.Text(value=s["depths"], description="Depths", style=STYLE, layout=TEXT,
                               tooltip="comma-separated, e.g. 1,2")
        self.tokens = ipw.Text(value=s["tokens"], description="Tokens", style=STYLE, layout=TEXT,
                               placeholder="(the form's data size)", tooltip="comma-separated, e.g. 4k,16k,64k")
        self.budgets = ipw.Text(value=s["budgets"], description="Budgets (FLOPs)", style=STYLE, layout=TEXT,
                                tooltip="compute budgets C, comma-separated, e.g. 1e11,1e12")
        self.sizes = ipw.Text(value=s["sizes"], description="Widths per budget", style=STYLE, layout=TEXT,
                              tooltip="the model widths tried at every budget, e.g. 16,32,64")
        for name in ("mode", "widths", "depths", "tokens", "budgets", "sizes", "ladder_widths", "ladder_depths",
                     "tokens_per_param", "ladder_seeds", "ladder_tuned"):
            getattr(self, name).add_class(f"lab-sweep-{name.replace('_', '-')}")
            getattr(self, name).observe(lambda change, name=name: c.sweep.set(**{name: change.new}), names="value")
        self.mode.observe(lambda _change: self._show(), names="value")
        self._names = ("mode", "widths", "depths", "tokens", "budgets", "sizes", "ladder_widths", "ladder_depths",
                       "tokens_per_param", "ladder_seeds", "ladder_tuned")
        self.plan = ipw.HTML()
        self.plan.add_class("lab-sweep-plan")
        self.run = _button("Run sweep", "Train every planned run the store does not hold yet",
                           lambda _: c.sweep.start(),
                           "success", "play", "lab-sweep-run")
        self.stop = _button("Stop", "Stop after the current chunk; finished runs are kept", lambda _: c.train.stop(),
                            "danger", "stop", "lab-sweep-stop")
        self.ladder_box = ipw.VBox([self.ladder_widths, self.ladder_depths, self.tokens_per_param, self.ladder_seeds,
                                    self.ladder_tuned])
        self.grid_box = ipw.VBox([self.widths, self.depths, self.tokens])
        self.iso_box = ipw.VBox([self.budgets, self.sizes])
        super().__init__([ipw.HTML("Plan many runs at once. Other settings come from the form on the left."),
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
            self.plan.value = f"<div style='color:#a00'>Cannot plan: {html.escape(p['error'])}</div>"
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
        self.family = ipw.Dropdown(options=[], description="Family", style=STYLE, layout=ipw.Layout(width="640px"),
                                   tooltip="Runs that differ only in model size, tokens and seed. A law is fitted to "
                                           "one family at a time: mixing families mixes laws")
        self.family.add_class("lab-family")
        self.family.observe(lambda change: self._chosen(c.scaling.set_family, change.new), names="value")
        self.variable = ipw.Dropdown(options=[("parameters N", "N"), ("tokens D", "D"), ("compute C", "C")],
                                     value=c.state.fit.get("variable", "N"), description="Loss against",
                                     style=STYLE, tooltip="the x axis of the right-hand plot and of the fit")
        self.variable.add_class("lab-variable")
        self.variable.observe(lambda change: c.scaling.set_variable(change.new), names="value")
        self.holdout = ipw.BoundedIntText(value=c.state.holdout, min=0, max=20, description="Hold out K largest",
                                          style=STYLE, layout=ipw.Layout(width="200px"),
                                          tooltip="A ladder's law in N: fit it to all but the K largest sizes, then "
                                                  "predict those and compare with their measured loss (2 once the "
                                                  "family has 6 sizes)")
        self.holdout.add_class("lab-holdout")
        self.holdout.observe(lambda change: self._chosen(c.scaling.set_holdout, change.new), names="value")
        self.fit = _button("Fit", "Fit L = E + A·x^-α to the family's finished runs (diverged ones are left out)",
                           lambda _: c.scaling.fit(self.variable.value), "primary", "line-chart", "lab-fit")
        self.equation = ipw.HTML(layout=ipw.Layout(flex="1 1 55%"))
        self.warnings = ipw.HTML(layout=ipw.Layout(flex="1 1 45%"))
        self.held_out = ipw.HTML()
        self.budget = ipw.Text(value="1e15", description="Budget C (FLOPs)", style=STYLE,
                               tooltip="a compute budget in FLOPs, e.g. 1e15")
        self.calc = _button("Calculate", "Best model size and data for this budget, and its predicted loss",
                            lambda _: c.scaling.budget(self.budget.value))
        self.budget_out = ipw.HTML()
        self.width = ipw.BoundedIntText(value=256, min=8, max=16384, description="Bigger width", style=STYLE,
                                        tooltip="a model you have not trained yet")
        self.depth = ipw.BoundedIntText(value=4, min=1, max=256, description="Bigger depth", style=STYLE,
                                        tooltip="its number of blocks")
        self.predict = _button("Predict", "Extrapolate the fitted law to this model (the family's setup with this "
                                          "width and depth)", lambda _: c.scaling.predict(self.width.value, self.depth.value),
                               hook="lab-predict")
        self.check = _button("Train it", "Train the predicted model and compare prediction and measurement; it stays "
                                         "out of the law it checks", lambda _: c.scaling.train_prediction(), "success", "play",
                             "lab-check")
        self.prediction = ipw.HTML()
        super().__init__([self.family, ipw.HBox([self.variable, self.holdout, self.fit]),
                          ipw.HBox([self.equation, self.warnings]), self.held_out,
                          ipw.HTML("<b>Budget calculator</b>"), ipw.HBox([self.budget, self.calc]), self.budget_out,
                          ipw.HTML("<b>Extrapolate</b> to a model not trained yet, then check it"),
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
            options = [(f"{f['label']} · {f['sizes']} size{'s' * (f['sizes'] != 1)}, {f['runs']} run"
                        f"{'s' * (f['runs'] != 1)}", f["key"]) for f in st.families]
            if list(self.family.options) != options:
                self.family.options = options
            keys = [k for _, k in options]
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
            parts.append(f"<div class='lab-chinchilla'>Chinchilla: {html.escape(fit['chinchilla'])}</div>")
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
        return ("<div class='lab-warnings' style='color:#060;padding:4px 8px'>Nothing found against this law "
                "(enough sizes, span, seeds and tokens; see the held-out check).</div>")
    items = "".join(f"<li>{html.escape(w)}</li>" for w in fit["warnings"])
    return (f"<div class='lab-warnings' style='color:#7a4a00;background:#fff8e6;border:1px solid #e8c77a;"
            f"padding:4px 8px;border-radius:4px;font-size:90%'><b>Reasons to doubt this law:</b>"
            f"<ul style='margin:2px 0 2px 18px;padding:0'>{items}</ul></div>")


def _held_out_table(fit: dict) -> str:
    """The held-out sizes: predicted by the law fitted without them, against their measured loss."""
    rows = fit.get("held_out") or []
    if not rows:
        return ""
    pct = int(round(100 * fit.get("confidence", 0.95)))
    head = "".join(f"<th style='padding:2px 8px'>{h}</th>" for h in
                   ("size", "N", f"predicted ({pct}% interval)", "measured ± sd", "relative error"))
    body = ""
    for p in rows:
        interval = f" ({p['low']:.3f} to {p['high']:.3f})" if p.get("low") is not None else ""
        spread = f" ± {p['sd']:.3f}" if p.get("sd") is not None else " (1 seed)" if p.get("seeds") == 1 else ""
        measured = f"{p['measured']:.3f}{spread}" if p.get("measured") is not None else "–"
        err = f"{p['rel_error']:+.1%}" if p.get("rel_error") is not None else "–"
        body += (f"<tr><td style='padding:2px 8px'>width {p['width']}, depth {p['depth']}</td>"
                 f"<td style='padding:2px 8px'>{fmt_count(p['N'])}</td>"
                 f"<td style='padding:2px 8px'>{p['predicted']:.3f}{interval}</td>"
                 f"<td style='padding:2px 8px'>{measured}</td><td style='padding:2px 8px'>{err}</td></tr>")
    return (f"<div style='font-size:90%'><b>Held out:</b> the {len(rows)} largest size(s), predicted by the law "
            f"fitted without them<table class='lab-heldout' style='border-collapse:collapse'><tr>{head}</tr>{body}"
            "</table></div>")


class RunsPanel(ipw.VBox):
    """The run table: select, compare, delete, export CSV."""

    COLUMNS = (("run", "run_id"), ("status", "status"), ("arch", "arch"), ("width", "width"), ("depth", "depth"),
               ("N", "params_total"), ("D", "tokens"), ("epochs", "epochs"), ("C", "flops"),
               ("optimizer", "optimizer"), ("lr", "lr"), ("seed", "seed"), ("val loss", "eval_loss"),
               ("tokens/s", "tokens_per_s"), ("time", "wall_s"))

    def __init__(self, c: Controller):
        self.c = c
        self.select = ipw.SelectMultiple(options=[], rows=8, description="Runs", style={"description_width": "50px"},
                                         layout=ipw.Layout(width="560px"),
                                         tooltip="Ctrl/Shift-click to choose several runs")
        self.select.add_class("lab-runs-select")
        self.select.observe(lambda change: c.runs.select(change.new), names="value")
        self.compare = ipw.Checkbox(value=False, description="Plot only the selected runs", indent=False)
        self.compare.observe(lambda change: c.runs.set_compare(change.new), names="value")
        self.delete = _button("Delete", "Delete the selected runs from the store (a student: only the runs they "
                              "asked for)", lambda _: c.runs.delete_selected(), "danger", "trash", "lab-runs-delete")
        self.export = _button("Export CSV", "The selected runs (or all) as a CSV file", lambda _: c.runs.export_csv(),
                              "", "download")
        self.refresh = _button("Refresh", "Reload the run store", lambda _: c.runs.refresh(), "", "refresh")
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
        head = "".join(f"<th style='padding:2px 6px'>{h}</th>" for h, _ in self.COLUMNS)
        body = "".join("<tr>" + "".join(f"<td style='padding:2px 6px'>{_cell(k, r.get(k))}</td>"
                                         for _, k in self.COLUMNS) + "</tr>" for r in shown)
        self.table.value = (f"<div style='max-height:300px;overflow:auto'><table class='lab-runs' "
                            f"style='font-size:85%;border-collapse:collapse'><tr>{head}</tr>{body}</table></div>"
                            f"<div style='font-size:85%;color:#555'>{len(st.runs)} runs in the store</div>")


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
    return html.escape(str(value))


class SamplePanel(ipw.VBox):
    """Text written by a trained model."""

    def __init__(self, c: Controller):
        self.c = c
        self.run = ipw.Dropdown(options=[], description="Run", style={"description_width": "80px"},
                                layout=ipw.Layout(width="560px"), tooltip="a finished run (its weights are stored)")
        self.prompt = ipw.Text(value="The ", description="Prompt", style={"description_width": "80px"},
                               layout=ipw.Layout(width="560px"), tooltip="text for the model to continue")
        self.length = ipw.IntSlider(value=200, min=10, max=1000, step=10, description="Length",
                                    style={"description_width": "80px"}, tooltip="bytes to write")
        self.temperature = ipw.FloatSlider(value=0.8, min=0.0, max=1.5, step=0.05, description="Temperature",
                                           style={"description_width": "90px"},
                                           tooltip="0: always the likeliest next byte; 1: the model's own odds")
        self.go = _button("Sample", "Let the model write", lambda _: c.runs.sample(self.run.value, self.prompt.value,
                                                                             self.length.value, self.temperature.value),
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
            ids = [v for _, v in options]
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
        controls = [(f"{f.label} ({f.name})", f.name) for f in fields.FIELDS]
        narrow = {"description_width": "50px"}
        self.hide = ipw.SelectMultiple(options=controls, rows=6, description="Hide", style=narrow,
                                       layout=ipw.Layout(width="300px"),
                                       tooltip="Controls the link does not show (their values still come from the "
                                               "link); Ctrl/Shift-click to choose several")
        self.lock = ipw.SelectMultiple(options=controls, rows=6, description="Lock", style=narrow,
                                       layout=ipw.Layout(width="300px"),
                                       tooltip="Controls the link shows but does not let students change (their "
                                               "value is fixed by the link); Ctrl/Shift-click to choose several")
        self.tab = ipw.Dropdown(options=[("(the first)", ""), *((title, key) for key, title in fields.TABS.items()
                                                               if key not in fields.TEACHER_TABS)],
                                value="", description="Open tab", style={"description_width": "70px"},
                                tooltip="The tab the link opens")
        for name in ("hide", "lock", "tab"):
            w = getattr(self, name)
            w.add_class(f"lab-share-{name}")
            w.observe(lambda change, name=name: self._chosen(name, change.new), names="value")
        self.text = ipw.Text(description="Link", style={"description_width": "50px"}, layout=ipw.Layout(width="720px"),
                             tooltip="add this to the app's address; it sets the controls")
        self.text.add_class("lab-share-text")
        self.link = ipw.HTML()
        super().__init__([ipw.HTML("Add this to the app's address to open it with the same settings. For a class, "
                                   "choose controls to hide or lock and a tab to open:"),
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
        self.link.value = (f"<a class='lab-share' href='{html.escape(q)}' target='_blank'>open this setup in a new "
                           "tab</a>")


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
        self.everyone = ipw.ToggleButton(value=False, description="Everyone's curves", icon="users",
                                         tooltip="Show every student's run in training on the plot (for the "
                                                 "projector); off: this page's runs")
        self.everyone.add_class("lab-class-everyone")
        self.everyone.observe(lambda change: c.classroom.set_plot_mode("class" if change.new else "app"),
                              names="value")
        self.clear = _button("Clear the queue", "Remove every waiting run from the queue (runs in training go on; "
                             "their students can ask again)", lambda _: c.classroom.clear_queue(), "danger",
                             "trash", "lab-class-clear")
        self.refresh = _button("Refresh", "Read the class again", lambda _: c.classroom.refresh(), "", "refresh")
        box = {"style": {"description_width": "150px"}, "layout": ipw.Layout(width="260px")}
        self.max_queued = ipw.BoundedIntText(min=0, max=1000, description="Runs queued per page",
                                             tooltip="How many runs one student's page may have waiting at once (0: "
                                                     "no limit)", **box)
        self.max_tokens = ipw.BoundedIntText(min=0, max=10**12, step=100_000, description="Tokens per run",
                                             tooltip="The most training tokens a student's run may use (0: no "
                                                     "limit); bigger runs are refused with a message", **box)
        self.max_pages = ipw.BoundedIntText(min=0, max=1000, description="Pages at once",
                                            tooltip="The most pages open at once; the next visitor reads that the "
                                                    "class is full (0: no limit)", **box)
        self.set_limits = _button("Set limits", "Apply these limits now (the training service enforces them)",
                                  lambda _: c.classroom.set_limits(max_queued=self.max_queued.value,
                                                                   max_tokens=self.max_tokens.value,
                                                                   max_pages=self.max_pages.value), "", "check",
                                  "lab-class-limits")
        super().__init__([ipw.HBox([self.everyone, self.clear, self.refresh]), self.pages, self.training,
                          self.waiting, ipw.HTML("<b>Limits</b>"),
                          ipw.HBox([self.max_queued, self.max_tokens, self.max_pages, self.set_limits])])
        _observe(c.state, ("classroom", "plot_mode"), self._show)

    @staticmethod
    def _table(title: str, head: tuple, rows: list) -> str:
        if not rows:
            return f"<div><b>{html.escape(title)}</b>: none</div>"
        cells = "".join("<tr>" + "".join(f"<td style='padding:1px 8px'>{html.escape(str(v))}</td>" for v in r)
                        + "</tr>" for r in rows)
        heads = "".join(f"<th style='text-align:left;padding:1px 8px'>{html.escape(h)}</th>" for h in head)
        return (f"<div><b>{html.escape(title)}</b><table class='lab-class-table' style='font-size:90%'>"
                f"<tr>{heads}</tr>{cells}</table></div>")

    def _show(self):
        st = self.c.state
        cl = st.classroom or {}
        self.everyone.value = st.plot_mode == "class"
        self.pages.value = self._table(f"Pages open ({len(cl.get('pages', []))})", ("name", "role"),
                                       [(p["name"], p["role"]) for p in cl.get("pages", [])])
        self.training.value = self._table(
            f"Training now ({cl.get('workers', 0)} worker(s))", ("for", "run", "step"),
            [(t["who"], t["what"], f"{t['step']:,} of {t['steps']:,}" + (" (stopping)" if t["cancelling"] else ""))
             for t in cl.get("training", [])])
        self.waiting.value = self._table("Waiting in the queue", ("place", "for", "run", "starts in about"),
                                         [(w["place"], w["who"], w["what"], w["starts"])
                                          for w in cl.get("waiting", [])])
        limits = cl.get("limits") or {}
        for name in ("max_queued", "max_tokens", "max_pages"):
            getattr(self, name).value = int(limits.get(name) or 0)
