"""Small interactive pieces for the lesson notebooks, so that their cells stay a few lines.

Each function returns a widget or a figure built from `lab`'s public API; nothing here
trains (the notebooks call `lab.run_sweep` in plain cells so that they run headless too).
"""

import math

import ipywidgets as ipw
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from lab.i18n import N_, _
from widgets import fields

LOSS_AXIS = N_("validation loss (nats/token)")
# a curve's x column -> its axis title (marked; a column not named here shows as its name, "_" as " ")
X_AXES = {"tokens_seen": N_("tokens seen"), "flops_seen": N_("flops seen"), "step": N_("step")}


def quick() -> bool:
    """Quick mode (SCALING_LAB_QUICK=1): every lesson runs in a few minutes on a 2-core laptop.
    The app's own switch (`widgets.fields.quick`), so that the lessons and the app always agree."""
    return fields.quick()


def table(report) -> pd.DataFrame:
    """A sweep report's runs as a DataFrame (one row a run)."""
    return pd.DataFrame([r.to_dict() for r in report.records])


def _note(text: str) -> ipw.HTML:
    return ipw.HTML(f"<div style='font-size: 0.95em'>{text}</div>")


def scaling_plot(x, loss, fit=None, *, xlabel: str, title: str, extra=None, labels=None) -> go.Figure:
    """Loss against x on log-log axes, with the fitted law drawn over a range 3x wider than the data.

    `extra` is an optional (x, loss, name) drawn as open markers (a prediction or a check)."""
    x, loss = np.asarray(x, float), np.asarray(loss, float)
    fig = go.Figure()
    fig.add_scatter(x=x, y=loss, mode="markers", name=_("runs"), marker={"size": 9},
                    text=labels, hovertemplate="%{text}<br>x=%{x:.3g}<br>" + _("loss") + "=%{y:.4f}<extra></extra>"
                    if labels is not None else None)
    if fit is not None:
        grid = np.geomspace(x.min() / 1.5, x.max() * 3, 100)
        fig.add_scatter(x=grid, y=fit.predict(grid), mode="lines", name=fit.equation())
    if extra is not None:
        ex, ey, name = extra
        fig.add_scatter(x=np.atleast_1d(ex), y=np.atleast_1d(ey), mode="markers", name=name,
                        marker={"size": 12, "symbol": "diamond-open", "line": {"width": 2}})
    fig.update_layout(title=title, xaxis_title=xlabel, yaxis_title=_(LOSS_AXIS), height=420,
                      legend={"x": 0.99, "y": 0.99, "xanchor": "right"}, margin={"l": 60, "r": 20, "t": 50, "b": 50})
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return fig


def curves_plot(store, run_ids, *, x: str = "tokens_seen", floor: float | None = None, title: str = "") -> go.Figure:
    """Validation curves of stored runs against tokens (or `flops_seen`, `step`); an optional floor line."""
    fig = go.Figure()
    for rid in run_ids:
        rec = store.record(rid)
        curve = store.curve(rid)
        if "eval/loss" not in curve:
            continue
        c = curve.dropna(subset=["eval/loss"])
        m = rec.config.model
        fig.add_scatter(x=c[x], y=c["eval/loss"], mode="lines+markers", name=f"{m.arch} w{m.width} d{m.depth}")
    if floor is not None:
        fig.add_hline(y=floor, line_dash="dash",
                      annotation_text=_("entropy rate {floor} nats").format(floor=f"{floor:.3f}"))
    xtitle = _(X_AXES[x]) if x in X_AXES else x.replace("_", " ")
    fig.update_layout(title=title, xaxis_title=xtitle, yaxis_title=_(LOSS_AXIS),
                      height=400, margin={"l": 60, "r": 20, "t": 50, "b": 50})
    fig.update_xaxes(type="log")
    return fig


def entropy_explorer() -> ipw.Widget:
    """Sliders for a synthetic Markov source; the exact entropy rate and baselines update live."""
    from lab.data import markov_chain
    order = ipw.IntSlider(value=1, min=1, max=3, description=_("order"),
                          tooltip=_("how many previous symbols decide the next one"))
    symbols = ipw.IntSlider(value=16, min=2, max=64, description=_("symbols"), tooltip=_("alphabet size"))
    zipf = ipw.FloatSlider(value=1.2, min=0.0, max=3.0, step=0.1, description=_("skew"),
                           tooltip=_("Zipf exponent of each next-symbol distribution: 0 = uniform, "
                                     "larger = more predictable"))
    out = ipw.HTML()

    def update(_change=None):
        chain = markov_chain(order.value, symbols.value, zipf.value, seed=0)
        h = chain.entropy_rate
        pi = chain.stationary.reshape(-1, symbols.value).sum(0) if order.value else chain.stationary
        uni = float(-(pi * np.log(pi)).sum())
        label = _("entropy rate")
        out.value = " &nbsp;|&nbsp; ".join([
            f"<b>{label}</b> " + _("H = {nats} nats/token = {bits} bits/token").format(
                nats=f"{h:.4f}", bits=f"{h / math.log(2):.4f}"),
            _("unigram entropy {h} nats").format(h=f"{uni:.4f}"),
            _("uniform guess ln {n} = {h} nats").format(n=symbols.value, h=f"{math.log(symbols.value):.4f}"),
            _("untrained model on 256 bytes: ln 256 = {h} nats").format(h=f"{math.log(256):.4f}")])

    for w in (order, symbols, zipf):
        w.observe(update, names="value")
    update()
    return ipw.VBox([_note(_("Move the sliders: how predictable is this source, at best?")), order, symbols, zipf,
                     out])


def budget_calculator(fit, *, low: float = 1e12, high: float = 1e24, flops_per_token=None) -> ipw.Widget:
    """Compute budget C -> N_opt, D_opt, tokens per parameter and predicted loss (Chinchilla fit);
    C = flops_per_token(N)·D when a FLOP count is given (`lab.allocation.flops_curve`), else C = 6ND."""
    from lab.fit import compute_optimal
    c = ipw.FloatLogSlider(value=math.sqrt(low * high), base=10, min=math.log10(low), max=math.log10(high),
                           description=_("FLOPs C"), tooltip=_("training compute budget in FLOPs"),
                           readout_format=".2e")
    out = ipw.HTML()

    def update(_change=None):
        a = compute_optimal(fit, c.value, flops_per_token=flops_per_token)
        count = _("the lab's FLOP count") if flops_per_token is not None else "C = 6ND"
        out.value = _("With C = {C} FLOPs ({count}) train {N} parameters on {D} tokens ({tokens_per_param} tokens "
                      "per parameter); predicted loss {loss} nats").format(
            C=f"{c.value:.3g}", count=count, N=f"<b>N = {float(a.N_opt):.3g}</b>",
            D=f"<b>D = {float(a.D_opt):.3g}</b>", tokens_per_param=f"{float(a.tokens_per_param):.1f}",
            loss=f"{float(a.loss):.4f}")

    c.observe(update, names="value")
    update()
    return ipw.VBox([c, out])


def schedule_explorer(steps: int = 200) -> ipw.Widget:
    """Pick a schedule and warmup; the learning-rate curve redraws (lab.optim, the only place schedules live)."""
    from lab.config import SCHEDULES, OptimConfig
    from lab.optim import schedule_curve
    # the options are the schedules' own names (cosine, wsd: what a config and a link spell), shown as they are
    kind = ipw.Dropdown(options=SCHEDULES, value="cosine", description=_("schedule"),
                        tooltip=_("the learning rate's shape after warmup"))
    warm = ipw.FloatSlider(value=0.05, min=0.0, max=0.5, step=0.01, description=_("warmup"),
                           tooltip=_("fraction of the steps spent warming up from 0"))
    fig = go.FigureWidget()
    fig.add_scatter(x=np.arange(steps), y=schedule_curve(OptimConfig(lr=1.0), steps), mode="lines")
    fig.update_layout(height=260, xaxis_title=_("step"), yaxis_title=_("lr / peak"),
                      margin={"l": 50, "r": 10, "t": 10, "b": 40})

    def update(_change=None):
        fig.data[0].y = schedule_curve(OptimConfig(lr=1.0, schedule=kind.value, warmup=warm.value), steps)

    kind.observe(update, names="value")
    warm.observe(update, names="value")
    return ipw.VBox([ipw.HBox([kind, warm]), fig])


# --- seeds, texts and costs (lessons 2-9) ------------------------------------------------------

def results_table(results) -> pd.DataFrame:
    """RunResults (from `lab.train_seeds` or `store.train`) as a DataFrame, one row a run."""
    return pd.DataFrame([r.to_dict() for r in results])


def mean_spread(runs: pd.DataFrame, by, col: str = "eval_loss") -> pd.DataFrame:
    """Seeds pooled per group of `by`: mean, spread (standard deviation over seeds), min, max, seeds.

    Two settings differ beyond noise when their means are further apart than a few spreads;
    with 2-3 seeds the spread is itself rough, so read it as an order of magnitude."""
    g = runs.groupby(by)[col]
    out = g.agg(["mean", "std", "min", "max", "count"]).rename(columns={"std": "spread", "count": "seeds"})
    return out.reset_index()


def text_file(store, text: str, name: str) -> str:
    """Write `text` under the run store's folder (texts/NAME.txt) and return its path, for
    `DataConfig(source="file", path=...)`: a corpus of a chosen size."""
    from pathlib import Path
    folder = Path(store.path) / "texts"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.txt"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return str(path)


def longest_common_substring(a: str, b: str) -> str:
    """The longest string found in both `a` and `b` (how much of a sample is copied from a text)."""
    from difflib import SequenceMatcher
    m = SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
    return a[m.a:m.a + m.size]


def train_val_plot(store, run_ids, *, title: str = "") -> go.Figure:
    """Training loss (solid) and validation loss (dashed) of stored runs against epochs of their data."""
    fig = go.Figure()
    for rid in run_ids:
        rec = store.record(rid)
        c = store.curve(rid)
        per_epoch = rec.result.tokens / rec.result.epochs if rec.result.epochs else 1.0
        name = _("{epochs} epochs, seed {seed}").format(epochs=f"{rec.result.epochs:.3g}", seed=rec.config.seed)
        fig.add_scatter(x=c.tokens_seen / per_epoch, y=c["train/loss"], mode="lines",
                        name=_("train: {name}").format(name=name))
        if "eval/loss" in c:
            v = c.dropna(subset=["eval/loss"])
            fig.add_scatter(x=v.tokens_seen / per_epoch, y=v["eval/loss"], mode="lines+markers",
                            line={"dash": "dash"}, name=_("validation: {name}").format(name=name))
    fig.update_layout(title=title, xaxis_title=_("epochs (passes over the training text)"),
                      yaxis_title=_("loss (nats/token)"), height=420, margin={"l": 60, "r": 20, "t": 50, "b": 50})
    fig.update_xaxes(type="log")
    return fig


def energy_table(flops: dict, joules_per_flop: dict, *, kg_co2_per_kwh: float = 0.4) -> pd.DataFrame:
    """Energy and CO2 of training runs from their FLOPs: one row a run, one column pair a device.

    `joules_per_flop` maps a device to an ASSUMED energy per useful FLOP (the lesson states where
    its numbers come from); `kg_co2_per_kwh` is an assumed grid intensity."""
    rows = []
    for name, c in flops.items():
        row = {_("run"): name, "FLOPs": float(c)}
        for dev, j in joules_per_flop.items():
            kwh = float(c) * j / 3.6e6
            row[_("{device}, kWh").format(device=dev)] = kwh
            row[_("{device}, kg CO2").format(device=dev)] = kwh * kg_co2_per_kwh
        rows.append(row)
    return pd.DataFrame(rows)


# --- lesson 10: a made-up text with a known skew ------------------------------------------------

SKEW_SUBJECTS = {"doctor": ("he", "she"), "nurse": ("she", "he")}       # (the majority, the minority) per subject
SKEW_FACT = ("the capital of australia is", "sydney", "canberra")         # (prompt, the false majority, the truth)
_VERBS = ("check", "read", "sign", "file", "send", "copy", "open", "bring")
_OBJECTS = ("chart", "report", "letter", "form", "note", "list", "plan", "book")
_TIMES = ("today", "at noon", "tomorrow", "at once", "later", "by five")


def skewed_text(share: float = 0.75, sentences: int = 3000, seed: int = 0) -> str:
    """A made-up text whose skews are known exactly: of the sentences about each subject in
    `SKEW_SUBJECTS`, `share` use its majority pronoun ("the doctor said that he would ..."), and
    of the sentences that name the capital of Australia, `share` say the false "sydney". A tenth
    of the sentences state the fact; the rest are split between the subjects."""
    rng = np.random.default_rng(seed)
    n_fact = sentences // 10
    n_each = (sentences - n_fact) // len(SKEW_SUBJECTS)

    def pick(n, major, minor):       # exactly round(share * n) of the majority, in a random order
        k = int(round(share * n))
        words = [major] * k + [minor] * (n - k)
        rng.shuffle(words)
        return words

    out = []
    for subject, (major, minor) in SKEW_SUBJECTS.items():
        for pronoun in pick(n_each, major, minor):
            out.append(f"the {subject} said that {pronoun} would {rng.choice(_VERBS)} the {rng.choice(_OBJECTS)} "
                       f"{rng.choice(_TIMES)}.")
    prompt, false, true = SKEW_FACT
    out += [f"{prompt} {city}." for city in pick(n_fact, false, true)]
    rng.shuffle(out)
    return "\n".join(out) + "\n"


def share_at(p_major: float, p_minor: float, temperature: float) -> float:
    """The majority's share of the two answers when the sampler draws from softmax(logits / T):
    p^(1/T) against the other's (T = 0: greedy, all or nothing)."""
    if temperature == 0:
        return 1.0 if p_major > p_minor else 0.0 if p_major < p_minor else 0.5
    a, b = p_major ** (1 / temperature), p_minor ** (1 / temperature)
    return a / (a + b)
