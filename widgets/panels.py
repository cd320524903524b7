"""The app's panels besides the run form: messages, the plot's toggles, sweeps, scaling, the run
table, text sampling and the share link. Each panel shows the state and calls the controller."""

import html

import ipywidgets as ipw

from widgets.controller import Controller, fmt_count

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
        self.x_axis.observe(lambda change: c.set_view(x_axis=change.new), names="value")
        self.log_scale.observe(lambda change: c.set_view(log=change.new), names="value")
        super().__init__([self.x_axis, self.log_scale])


class SweepPanel(ipw.VBox):
    """A grid (widths x depths x tokens) or an IsoFLOP plan, its cost before it starts, Run and Stop."""

    def __init__(self, c: Controller):
        self.c = c
        s = c.sweep_form
        self.mode = ipw.ToggleButtons(options=[("Grid", "grid"), ("IsoFLOP", "isoflop")], value=s["mode"],
                                      tooltips=["every combination of widths, depths and token counts",
                                                "for each compute budget C, several model sizes trained on D = C / "
                                                "(FLOPs per token): the Chinchilla experiment"])
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
        for name in ("mode", "widths", "depths", "tokens", "budgets", "sizes"):
            getattr(self, name).add_class(f"lab-sweep-{name}")
            getattr(self, name).observe(lambda change, name=name: c.set_sweep(**{name: change.new}), names="value")
        self.plan = ipw.HTML()
        self.plan.add_class("lab-sweep-plan")
        self.run = _button("Run sweep", "Train every planned run the store does not hold yet",
                           lambda _: c.start_sweep(),
                           "success", "play", "lab-sweep-run")
        self.stop = _button("Stop", "Stop after the current chunk; finished runs are kept", lambda _: c.stop(),
                            "danger", "stop", "lab-sweep-stop")
        self.grid_box = ipw.VBox([self.widths, self.depths, self.tokens])
        self.iso_box = ipw.VBox([self.budgets, self.sizes])
        super().__init__([ipw.HTML("Plan many runs at once. Other settings come from the form on the left."),
                          self.mode, self.grid_box, self.iso_box, self.plan, ipw.HBox([self.run, self.stop])])
        _observe(c.state, ("sweep_plan", "job"), self._show)

    def _show(self):
        st = self.c.state
        p = st.sweep_plan
        grid = self.mode.value == "grid"
        self.grid_box.layout.display = "" if grid else "none"
        self.iso_box.layout.display = "none" if grid else ""
        if p.get("error"):
            self.plan.value = f"<div style='color:#a00'>Cannot plan: {html.escape(p['error'])}</div>"
        else:
            self.plan.value = f"<pre style='font-size:85%;white-space:pre-wrap'>{html.escape(p.get('text', ''))}</pre>"
        self.run.disabled = bool(st.job) or not p.get("runs")
        self.stop.disabled = not st.job


class ScalingPanel(ipw.VBox):
    """Final loss against N, D or C: Fit, the equation, budget calculator and extrapolation check."""

    def __init__(self, c: Controller):
        self.c = c
        self.variable = ipw.Dropdown(options=[("parameters N", "N"), ("tokens D", "D"), ("compute C", "C")],
                                     value=c.state.fit.get("variable", "N"), description="Loss against",
                                     style=STYLE, tooltip="the x axis of the right-hand plot and of the fit")
        self.variable.add_class("lab-variable")
        self.variable.observe(lambda change: c.set_variable(change.new), names="value")
        self.fit = _button("Fit", "Fit L = E + A·x^-α to the finished runs (diverged ones are left out)",
                           lambda _: c.fit(self.variable.value), "primary", "line-chart", "lab-fit")
        self.equation = ipw.HTML()
        self.budget = ipw.Text(value="1e15", description="Budget C (FLOPs)", style=STYLE,
                               tooltip="a compute budget in FLOPs, e.g. 1e15")
        self.calc = _button("Calculate", "Best model size and data for this budget, and its predicted loss",
                            lambda _: c.budget(self.budget.value))
        self.budget_out = ipw.HTML()
        self.width = ipw.BoundedIntText(value=256, min=8, max=16384, description="Bigger width", style=STYLE,
                                        tooltip="a model you have not trained yet")
        self.depth = ipw.BoundedIntText(value=4, min=1, max=256, description="Bigger depth", style=STYLE)
        self.predict = _button("Predict", "Extrapolate the fitted law to this model",
                               lambda _: c.predict(self.width.value, self.depth.value))
        self.check = _button("Train it", "Train the predicted model and compare prediction and measurement",
                             lambda _: c.train_prediction(), "success", "play")
        self.prediction = ipw.HTML()
        super().__init__([ipw.HBox([self.variable, self.fit]), self.equation,
                          ipw.HTML("<b>Budget calculator</b>"), ipw.HBox([self.budget, self.calc]), self.budget_out,
                          ipw.HTML("<b>Extrapolate</b> to a model not trained yet, then check it"),
                          ipw.HBox([self.width, self.depth]), ipw.HBox([self.predict, self.check]), self.prediction])
        _observe(c.state, ("fit", "budget_text", "prediction", "job"), self._show)

    def _show(self):
        st = self.c.state
        fit = st.fit
        if fit.get("variable") and fit["variable"] != self.variable.value:
            self.variable.value = fit["variable"]
        parts = []
        if fit.get("equation"):
            parts.append(f"<div class='lab-equation' style='font-size:120%;color:#b22'>{html.escape(fit['equation'])}"
                         "</div>")
        if fit.get("chinchilla"):
            parts.append(f"<div class='lab-chinchilla'>Chinchilla: {html.escape(fit['chinchilla'])}</div>")
        parts += [f"<div style='font-size:90%;color:#555'>{html.escape(n)}</div>" for n in fit.get("notes", [])]
        self.equation.value = "".join(parts)
        self.budget_out.value = f"<div>{html.escape(st.budget_text)}</div>" if st.budget_text else ""
        self.prediction.value = f"<div>{html.escape(st.prediction.get('text', ''))}</div>"
        self.check.disabled = bool(st.job) or not st.prediction


class RunsPanel(ipw.VBox):
    """The run table: select, compare, delete, export CSV."""

    COLUMNS = (("run", "run_id"), ("status", "status"), ("arch", "arch"), ("width", "width"), ("depth", "depth"),
               ("N", "params_total"), ("D", "tokens"), ("C", "flops"), ("optimizer", "optimizer"), ("lr", "lr"),
               ("seed", "seed"), ("val loss", "eval_loss"), ("tokens/s", "tokens_per_s"), ("time", "wall_s"))

    def __init__(self, c: Controller):
        self.c = c
        self.select = ipw.SelectMultiple(options=[], rows=8, description="Runs", style={"description_width": "50px"},
                                         layout=ipw.Layout(width="560px"),
                                         tooltip="Ctrl/Shift-click to choose several runs")
        self.select.observe(lambda change: c.select(change.new), names="value")
        self.compare = ipw.Checkbox(value=False, description="Plot only the selected runs", indent=False)
        self.compare.observe(lambda change: c.set_compare(change.new), names="value")
        self.delete = _button("Delete", "Delete the selected runs from the store", lambda _: c.delete_selected(),
                              "danger", "trash")
        self.export = _button("Export CSV", "The selected runs (or all) as a CSV file", lambda _: c.export_csv(),
                              "", "download")
        self.refresh = _button("Refresh", "Reload the run store", lambda _: c.refresh_runs(), "", "refresh")
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
        self.go = _button("Sample", "Let the model write", lambda _: c.sample(self.run.value, self.prompt.value,
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
    """The link for the current setup: a teacher hands it out as a starting point."""

    def __init__(self, c: Controller):
        self.c = c
        self.text = ipw.Text(description="Link", style={"description_width": "50px"}, layout=ipw.Layout(width="720px"),
                             tooltip="add this to the app's address; it sets the controls")
        self.text.add_class("lab-share-text")
        self.link = ipw.HTML()
        super().__init__([ipw.HTML("Add this to the app's address to open it with the same settings:"), self.text,
                          self.link])
        _observe(c.state, ("share",), self._show)

    def _show(self):
        q = self.c.state.share
        self.text.value = q
        self.link.value = (f"<a class='lab-share' href='{html.escape(q)}' target='_blank'>open this setup in a new "
                           "tab</a>")
