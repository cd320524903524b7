"""The app's one figure: live loss curves (left) and final loss against N, D or C with the fitted
law (right), redrawn in place from the state.

The picture is built with plotly's `go.Figure` (every trace exists from the start; a pool of
curve traces grows when more runs are shown; each redraw sets whole traces inside
`fig.batch_update()`) and drawn on the page by `widgets.liveplot.LivePlot`, which receives the
figure's JSON and redraws with `Plotly.react` (zoom kept: `uirevision`). One figure with two
subplots, not two: two plotly widgets on one Voila page often stopped updating (plotly.py#4933).
The JSON goes to the page at most every SYNC_S inside a kernel (the live data arrive up to 4
times a second), at once without an event loop; a view that opens later starts from the
current picture (it is the widget's state).
"""

import asyncio
import json
import math
import os
import sys
import time


def _import_plotly():
    """plotly, in a served page's kernel without nbformat: plotly imports it only to check notebook
    mime rendering (which the app never uses), and with it jsonschema's format
    checkers and a parser grammar, about 15 MB of every page's kernel. Notebooks keep it."""
    hide = bool(os.environ.get("VOILA_BASE_URL")) and "nbformat" not in sys.modules
    if hide:
        sys.modules["nbformat"] = None          # an import of it fails: plotly's optional import says None
    try:
        import plotly.graph_objects as go
        from plotly.colors import sample_colorscale
        from plotly.subplots import make_subplots
    finally:
        if hide:
            del sys.modules["nbformat"]
    return go, sample_colorscale, make_subplots


go, sample_colorscale, make_subplots = _import_plotly()

from lab.i18n import N_, _
from widgets.liveplot import LivePlot
from widgets.state import AppState

SYNC_S = 0.5               # the page's figure is sent at most this often while runs train

MAX_CURVES = 24            # runs drawn at once in the live panel (newest first; live and selected always)
# axis titles in English (marked): shown with _()
X_AXES = {"steps": ("step", N_("optimizer steps")), "tokens": ("tokens_seen", N_("tokens seen (D)")),
          "flops": ("flops_seen", N_("training FLOPs (C)"))}
SCALING = {"N": ("params_total", N_("parameters N")), "D": ("tokens", N_("training tokens D")),
           "C": ("flops", N_("training compute C (FLOPs)"))}
COLORSCALE = "Viridis"
GREY = "rgba(120,120,120,0.8)"
# fixed traces of the scaling panel, in order, after the colour bar (trace 0); each trace's `meta` holds its
# key (its `name` is the legend and hover word, in the page's language)
FIXED = ("band_hi", "band_lo", "fit", "frontier", "runs", "left_out", "predicted", "actual", "other", "held_out",
         "valley", "minima", "forecast")


def _hover(words: str = "%{text}", x: str = "x") -> str:
    """A scaling point's hover text: `words` (a run's label), x and the loss, in the page's language."""
    return "{words}<br>{x}=%{{x:.3g}}<br>{loss}=%{{y:.4f}}<extra></extra>".format(words=words, x=x, loss=_("loss"))


def _colour(t: float) -> str:
    return sample_colorscale(COLORSCALE, [min(max(t, 0.0), 1.0)])[0]


class Plots:
    """Owns the figure (`self.fig`, a go.Figure) and its view on the page (`self.view`), redrawn whenever the
    state changes."""

    def __init__(self, state: AppState):
        self.state = state
        self.view = LivePlot()
        self.view.add_class("lab-plot")
        self._pending = None
        self._pushed = 0.0
        self.fig = go.Figure(make_subplots(
            rows=1, cols=2, column_widths=[0.55, 0.45], horizontal_spacing=0.12,
            subplot_titles=(_("Loss while training (solid: train, dotted: validation)"), _("Final validation loss"))))
        f = self.fig
        f.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=_("size"), hoverinfo="skip", showlegend=False,
                               marker=dict(color=[3, 6], colorscale=COLORSCALE, cmin=3, cmax=6, showscale=True,
                                           colorbar=dict(title="log10 N", thickness=10, len=0.8, x=1.02))),
                    row=1, col=2)
        f.add_trace(go.Scatter(x=[], y=[], mode="lines", line=dict(width=0), hoverinfo="skip", name="band_hi",
                               showlegend=False), row=1, col=2)
        f.add_trace(go.Scatter(x=[], y=[], mode="lines", line=dict(width=0), fill="tonexty", hoverinfo="skip",
                               fillcolor="rgba(214,39,40,0.15)", name=_("95% band"), showlegend=False), row=1, col=2)
        f.add_trace(go.Scatter(x=[], y=[], mode="lines", line=dict(color="rgb(214,39,40)", width=2), name=_("fit"),
                               showlegend=False), row=1, col=2)
        f.add_trace(go.Scatter(x=[], y=[], mode="lines", line=dict(color="black", width=2, dash="dash"),
                               name=_("compute-optimal"), showlegend=False), row=1, col=2)
        f.add_trace(go.Scatter(x=[], y=[], mode="markers", name=_("runs"), showlegend=False, text=[],
                               hovertemplate=_hover(),
                               marker=dict(size=9, color=[], colorscale=COLORSCALE, cmin=3, cmax=6,
                                           line=dict(width=1, color="white"))), row=1, col=2)
        f.add_trace(go.Scatter(x=[], y=[], mode="markers", name=_("left out"), showlegend=False, text=[],
                               hovertemplate=_hover(_("{run} (left out of the fit)").format(run="%{text}")),
                               marker=dict(size=9, symbol="x", color=GREY)), row=1, col=2)
        f.add_trace(go.Scatter(x=[], y=[], mode="markers", name=_("predicted"), showlegend=False,
                               marker=dict(size=14, symbol="star", color="rgb(214,39,40)"),
                               error_y=dict(type="data", symmetric=False, array=[], arrayminus=[])), row=1, col=2)
        f.add_trace(go.Scatter(x=[], y=[], mode="markers", name=_("measured"), showlegend=False,
                               marker=dict(size=12, symbol="diamond-open", color="black", line=dict(width=2))),
                    row=1, col=2)
        f.add_trace(go.Scatter(x=[], y=[], mode="markers", name=_("another family"), showlegend=False, text=[],
                               hovertemplate=_hover(_("{run} (another family: not in this fit)").format(run="%{text}")),
                               marker=dict(size=6, color="rgba(150,150,150,0.45)")), row=1, col=2)
        f.add_trace(go.Scatter(x=[], y=[], mode="markers", name=_("held out: predicted"), showlegend=False, text=[],
                               hovertemplate="%{{text}}<br>N=%{{x:.3g}}<br>{predicted}=%{{y:.4f}}<extra></extra>".format(
                                   predicted=_("predicted")),
                               marker=dict(size=11, symbol="circle-open", color="rgb(214,39,40)", line=dict(width=2)),
                               error_y=dict(type="data", symmetric=False, array=[], arrayminus=[])), row=1, col=2)
        f.add_trace(go.Scatter(x=[], y=[], mode="lines", name=_("IsoFLOP valley"), showlegend=False, hoverinfo="skip",
                               line=dict(color="rgb(90,90,90)", width=1.5, dash="dot")), row=1, col=2)
        f.add_trace(go.Scatter(x=[], y=[], mode="markers", name=_("IsoFLOP minimum"), showlegend=False, text=[],
                               hovertemplate="%{text}<extra></extra>",
                               marker=dict(size=12, symbol="diamond", color="black", line=dict(width=1, color="white")),
                               error_x=dict(type="data", symmetric=False, array=[], arrayminus=[])), row=1, col=2)
        f.add_trace(go.Scatter(x=[], y=[], mode="lines+markers", name=_("forecast"), showlegend=False, text=[],
                               hovertemplate="%{text}<extra></extra>", line=dict(color="black", width=1.5, dash="dash"),
                               marker=dict(size=[0, 9], symbol="line-ew-open", color="black"),
                               error_y=dict(type="data", symmetric=False, array=[], arrayminus=[])), row=1, col=1)
        self._fixed = {name: i + 1 for i, name in enumerate(FIXED)}
        for name, i in self._fixed.items():
            f.data[i].meta = name               # the trace's key, the same in every language
        self._pool: list[int] = []          # trace indices of the curve pool: (train, eval) pairs
        self._grow(8)
        f.update_layout(height=430, margin=dict(l=60, r=30, t=40, b=50), template="plotly_white",
                        hovermode="closest", uirevision="keep")
        f.update_xaxes(type="log", title_text=_(X_AXES["tokens"][1]), row=1, col=1)
        f.update_yaxes(type="log", title_text=_("loss (nats/token)"), row=1, col=1)
        f.update_xaxes(type="log", title_text=_(SCALING["N"][1]), row=1, col=2)
        f.update_yaxes(type="log", title_text=_("final validation loss"), row=1, col=2)
        for name in ("runs", "live", "selected", "compare", "fit", "prediction", "view", "family", "plot_mode",
                     "class_live"):
            state.observe(lambda _change: self.redraw(), names=name)
        self.redraw()

    def _grow(self, runs: int) -> None:
        for _i in range(runs):
            self.fig.add_trace(go.Scatter(x=[], y=[], mode="lines", showlegend=False, visible=False,
                                          hovertemplate=_hover()),
                               row=1, col=1)
            self.fig.add_trace(go.Scatter(x=[], y=[], mode="lines+markers", showlegend=False, visible=False,
                                          line=dict(dash="dot"), marker=dict(size=5),
                                          hovertemplate=_hover(_("{run} (validation)").format(run="%{text}"))),
                               row=1, col=1)
            n = len(self.fig.data)
            self._pool.append((n - 2, n - 1))

    # --- drawing -------------------------------------------------------------------------------

    def _curves(self) -> list[dict]:
        """Runs to draw: live ones first, then stored ones newest first (only selected when comparing)."""
        st = self.state
        if st.plot_mode == "class":           # the teacher's projector: every student's run in training
            return [{"run_id": k, "label": v["label"], "params": v["params"], "points": v["points"], "selected": False}
                    for k, v in st.class_live.items()][:MAX_CURVES]
        sel = set(st.selected)
        out, seen = [], set()
        for run_id, v in st.live.items():
            if st.compare and sel and run_id not in sel:
                continue
            out.append({"run_id": run_id, "label": v["label"], "params": v["params"], "points": v["points"],
                        "selected": run_id in sel})
            seen.add(run_id)
        for r in st.runs:
            if r["run_id"] in seen or not r.get("curve") or (st.compare and r["run_id"] not in sel):
                continue
            out.append({"run_id": r["run_id"], "label": r["label"], "params": r["params_total"], "points": r["curve"],
                        "selected": r["run_id"] in sel})
        keep = [c for c in out[:MAX_CURVES]] + [c for c in out[MAX_CURVES:] if c["selected"]]
        return keep

    @staticmethod
    def _scale(values: list[float]) -> tuple[float, float]:
        logs = [math.log10(v) for v in values if v and v > 0]
        if not logs:
            return 3.0, 6.0
        lo, hi = min(logs), max(logs)
        return (lo - 0.5, hi + 0.5) if hi - lo < 1e-9 else (lo, hi)

    def redraw(self) -> None:
        st = self.state
        curves = self._curves()
        variable = st.fit.get("variable", "N")
        col, xtitle = SCALING[variable]
        rows = [r for r in st.runs if r.get("eval_loss") and r.get(col)]
        others = [r for r in rows if st.family and r.get("family") != st.family]   # not the fitted family
        rows = [r for r in rows if not (st.family and r.get("family") != st.family)]
        lo, hi = self._scale([c["params"] for c in curves] + [r["params_total"] for r in rows])
        if len(curves) > len(self._pool):
            self._grow(len(curves) - len(self._pool))
        x_axis = st.view.get("x_axis", "tokens")
        xkey = X_AXES[x_axis][0]
        f = self.fig
        with f.batch_update():
            for k, (ti, ei) in enumerate(self._pool):
                train, val = f.data[ti], f.data[ei]
                if k >= len(curves):
                    if train.visible is not False:
                        train.update(visible=False, x=[], y=[])
                        val.update(visible=False, x=[], y=[])
                    continue
                c = curves[k]
                colour = _colour((math.log10(max(c["params"], 1)) - lo) / (hi - lo))
                width = 3.5 if c["selected"] else 1.8
                pts = [p for p in c["points"] if _ok(p.get("train/loss")) and _ok(p.get(xkey))]
                evs = [p for p in c["points"] if _ok(p.get("eval/loss")) and _ok(p.get(xkey))]
                train.update(visible=True, x=[p[xkey] for p in pts], y=[p["train/loss"] for p in pts],
                             mode="lines" if len(pts) > 1 else "markers",
                             text=[c["label"]] * len(pts), name=c["label"], line=dict(color=colour, width=width))
                val.update(visible=True, x=[p[xkey] for p in evs], y=[p["eval/loss"] for p in evs],
                           text=[c["label"]] * len(evs), name=_("{run} (validation)").format(run=c["label"]),
                           line=dict(color=colour, width=width), marker=dict(color=colour))
            self._draw_forecast(x_axis)
            fit_rows = [r for r in rows if r["status"] == "done"]
            left = [r for r in rows if r["status"] != "done"]
            d = f.data
            d[0].marker.update(cmin=lo, cmax=hi, color=[lo, hi])
            d[self._fixed["runs"]].update(
                x=[r[col] for r in fit_rows], y=[r["eval_loss"] for r in fit_rows],
                text=[r["label"] for r in fit_rows],
                marker=dict(color=[math.log10(max(r["params_total"], 1)) for r in fit_rows], cmin=lo, cmax=hi,
                            size=[13 if r["run_id"] in st.selected else 9 for r in fit_rows]))
            d[self._fixed["left_out"]].update(x=[r[col] for r in left], y=[r["eval_loss"] for r in left],
                                              text=[r["label"] for r in left])
            d[self._fixed["other"]].update(x=[r[col] for r in others], y=[r["eval_loss"] for r in others],
                                           text=[r["label"] for r in others])
            fit = st.fit
            held = [p for p in (fit.get("held_out") or []) if variable == "N" and _ok(p.get("predicted"))]
            d[self._fixed["held_out"]].update(
                x=[p["N"] for p in held], y=[p["predicted"] for p in held],
                text=[_("width {width}, depth {depth}: predicted without it").format(width=p["width"], depth=p["depth"])
                      for p in held],
                error_y=dict(array=[(p["high"] - p["predicted"]) if p.get("high") is not None else 0 for p in held],
                             arrayminus=[(p["predicted"] - p["low"]) if p.get("low") is not None else 0
                                         for p in held]))
            band = fit.get("band") or {}
            d[self._fixed["band_hi"]].update(x=band.get("x", []), y=band.get("hi", []))
            d[self._fixed["band_lo"]].update(x=band.get("x", []), y=band.get("lo", []))
            curve = fit.get("curve") or {}
            d[self._fixed["fit"]].update(x=curve.get("x", []), y=curve.get("y", []),
                                         hovertemplate=_hover(fit.get("equation") or _("fit")))
            front = fit.get("frontier") or {}
            d[self._fixed["frontier"]].update(x=front.get("x", []), y=front.get("y", []))
            valley = (fit.get("valley") or {}) if variable == "N" else {}
            d[self._fixed["valley"]].update(x=valley.get("x", []), y=valley.get("y", []))
            mins = (fit.get("minima") or []) if variable == "N" else []
            d[self._fixed["minima"]].update(
                x=[m["N_opt"] for m in mins], y=[m["L_opt"] for m in mins],
                text=[_("C = {C} FLOPs: N_opt ≈ {N}, D_opt ≈ {D} tokens ({tpp} per parameter), L ≈ {L}").format(
                          C=f"{m['C']:.3g}", N=f"{m['N_opt']:.3g}", D=f"{m['D_opt']:.3g}",
                          tpp=f"{m['tokens_per_param']:.3g}", L=f"{m['L_opt']:.4f}") for m in mins],
                error_x=dict(array=[(m["high"] - m["N_opt"]) if m.get("high") else 0 for m in mins],
                             arrayminus=[(m["N_opt"] - m["low"]) if m.get("low") else 0 for m in mins]))
            pred = st.prediction if st.prediction.get("variable") == variable else {}
            if pred:
                up = [(pred["high"] - pred["loss"]) if pred.get("high") is not None else 0]
                down = [(pred["loss"] - pred["low"]) if pred.get("low") is not None else 0]
                d[self._fixed["predicted"]].update(x=[pred["x"]], y=[pred["loss"]],
                                                   error_y=dict(array=up, arrayminus=down))
                d[self._fixed["actual"]].update(x=[pred["x"]] if pred.get("actual") else [],
                                                y=[pred["actual"]] if pred.get("actual") else [])
            else:
                d[self._fixed["predicted"]].update(x=[], y=[])
                d[self._fixed["actual"]].update(x=[], y=[])
            ys = ([r["eval_loss"] for r in rows + others] + (curve.get("y") or [])
                  + ([pred["loss"], pred.get("high") or pred["loss"]] if pred else []))
            ys = [y for y in ys if _ok(y)]
            if ys:                               # log autorange around a single point spans decades
                lo_y, hi_y = math.log10(min(ys)), math.log10(max(ys))
                pad = max(0.03, 0.08 * (hi_y - lo_y))
                f.update_yaxes(range=[lo_y - pad, hi_y + pad], autorange=False, row=1, col=2)
            else:
                f.update_yaxes(autorange=True, row=1, col=2)
            kind = "log" if st.view.get("log", True) else "linear"
            f.update_xaxes(type=kind, title_text=_(X_AXES[x_axis][1]), row=1, col=1)
            f.update_yaxes(type=kind, row=1, col=1)
            f.update_xaxes(title_text=_(xtitle), row=1, col=2)
            self._hints(empty_curves=not curves, empty_scaling=not (rows or others), log=kind == "log")
        self._sync()

    def forecast(self):
        """The first live run's forecast final loss (lab.forecast), learnt from the finished runs of
        its family that this page lists: (run's live entry, Forecast), or None."""
        from lab.forecast import Forecaster
        st = self.state
        live = next(iter(st.live.values()), None) if st.plot_mode != "class" else None
        if not live or not live.get("points") or not live.get("tokens") or not live.get("family"):
            return None
        runs = [(r["params_total"], r["planned_tokens"], r["eval_loss"], r["curve"]) for r in st.runs
                if r["status"] == "done" and r.get("family") == live["family"] and r.get("curve")
                and r.get("eval_loss")]
        fc = Forecaster(runs).forecast(live["params"], live["tokens"], live["points"])
        return (live, fc) if fc is not None else None

    def _draw_forecast(self, x_axis: str) -> None:
        """A dashed line from the live run's last point to its end, at the forecast final loss, with its interval."""
        trace = self.fig.data[self._fixed["forecast"]]
        got = self.forecast()
        if got is None:
            trace.update(x=[], y=[], text=[])
            return
        live, fc = got
        last = live["points"][-1]
        key = X_AXES[x_axis][0]
        if not last.get(key) or not last.get("tokens_seen"):
            trace.update(x=[], y=[], text=[])
            return
        end = last[key] * live["tokens"] / last["tokens_seen"]     # steps, tokens and FLOPs grow with the tokens
        trace.update(x=[last.get(key), end], y=[fc.loss, fc.loss], text=[fc.words()] * 2,
                     error_y=dict(array=[0, fc.high - fc.loss], arrayminus=[0, fc.loss - fc.low]))

    def _hints(self, *, empty_curves: bool, empty_scaling: bool, log: bool) -> None:
        """An empty panel says what will appear in it, over axes of a plausible range (not 0.1 to 10k)."""
        f = self.fig
        keep = [a for a in f.layout.annotations if not (a.name or "").startswith("hint")]
        hint = dict(showarrow=False, font=dict(color="grey", size=13), x=0.5, y=0.5, xanchor="center")
        if empty_curves:
            keep.append(dict(hint, name="hint-curves", xref="x domain", yref="y domain",
                             text=_("Press Train: the training and validation loss<br>appear here as the model learns")))
            f.update_xaxes(range=[3, 7] if log else [0, 1e6], autorange=False, row=1, col=1)
            f.update_yaxes(range=[0, math.log10(6)] if log else [0, 6], autorange=False, row=1, col=1)
        else:
            f.update_xaxes(autorange=True, row=1, col=1)
            f.update_yaxes(autorange=True, row=1, col=1)
        if empty_scaling:
            keep.append(dict(hint, name="hint-scaling", xref="x2 domain", yref="y2 domain",
                             text=_("Each finished run adds a point here:<br>its final loss against its size.<br>"
                                    "A sweep (Sweep tab) gives a law to fit")))
            f.update_xaxes(range=[4, 6], autorange=False, row=1, col=2)
            f.update_yaxes(range=[0, math.log10(6)], autorange=False, row=1, col=2)
        else:
            f.update_xaxes(autorange=True, row=1, col=2)
        f.layout.annotations = keep

    def _sync(self) -> None:
        """Send the figure to the page: now, or within SYNC_S when it was sent a moment ago."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self._push()
        if self._pending is not None:
            return
        wait = self._pushed + SYNC_S - time.monotonic()
        if wait <= 0:
            self._push()
        else:
            self._pending = loop.call_later(wait, self._push)

    def _push(self) -> None:
        self._pending = None
        self._pushed = time.monotonic()
        figure = json.loads(self.fig.to_json())
        self.view.figure_layout = figure.get("layout", {})     # unchanged: no message (traitlets compare)
        self.view.figure_data = figure.get("data", [])

    def points(self, trace: str = "curves") -> int:
        """How many points the figure shows: in the live curves, or in a fixed trace (tests)."""
        if trace == "curves":
            return sum(len(self.fig.data[i].x or ()) for pair in self._pool for i in pair)
        return len(self.fig.data[self._fixed[trace]].x or ())


def _ok(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v) and v > 0
