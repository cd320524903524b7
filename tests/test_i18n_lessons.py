"""The lesson notebooks' widgets and figures (widgets/lessons.py) in Chinese: every text they show
(descriptions, tooltips, HTML, figure titles, axis titles, trace names, hover words, annotations) has no
English words outside lab.i18n.LATIN_ALLOWED; in English they read as before."""

import html
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from lab import i18n

CJK = re.compile(r"[\u4e00-\u9fff]")


class _Store:
    """What curves_plot and train_val_plot read of a run store: a record and a curve per run id."""

    def record(self, rid):
        model = SimpleNamespace(arch="gpt", width=32, depth=2)
        return SimpleNamespace(config=SimpleNamespace(model=model, seed=0),
                               result=SimpleNamespace(tokens=4000.0, epochs=2.0))

    def curve(self, rid):
        return pd.DataFrame({"tokens_seen": [1000, 2000, 4000], "flops_seen": [1e9, 2e9, 4e9], "step": [1, 2, 4],
                             "train/loss": [3.0, 2.5, 2.2], "eval/loss": [3.1, np.nan, 2.4]})


def _power_fit():
    from lab.fit import fit_power_law
    x = np.array([1e4, 3e4, 1e5, 3e5])
    return x, 1.5 + 40 * x ** -0.3, fit_power_law(x, 1.5 + 40 * x ** -0.3, variable="N")


def _chinchilla():
    from lab.fit import ChinchillaFit
    return ChinchillaFit(E=1.7, A=400.0, B=410.0, alpha=0.34, beta=0.28, objective=0.0, converged=True,
                         message="", n_points=9, n_starts=1)


def _strip(text: str) -> str:
    text = re.sub(r"%\{[^}]*\}", " ", text)                 # plotly's %{x:.3g} placeholders
    return html.unescape(re.sub(r"<[^>]+>", " ", text))


def _figure_texts(fig) -> list[str]:
    lay = fig.layout
    out = [part.text for part in (lay.title, lay.xaxis.title, lay.yaxis.title) if part is not None and part.text]
    out += [a.text for a in lay.annotations if a.text]
    for t in fig.data:
        out += [t.name] if t.name else []
        out += [_strip(t.hovertemplate)] if getattr(t, "hovertemplate", None) else []
    return out


def _texts(widget, out=None) -> list[str]:
    """Every text a widget tree (or a figure) shows."""
    out = [] if out is None else out
    if isinstance(widget, (go.Figure, go.FigureWidget)):
        return out + _figure_texts(widget)
    for attr in ("description", "tooltip", "placeholder"):
        v = getattr(widget, attr, None)
        if isinstance(v, str) and v:
            out.append(v)
    if type(widget).__name__ in ("HTML", "Label", "HTMLMath"):
        out.append(_strip(widget.value))
    out += list(getattr(widget, "_options_labels", ()) or ())
    for child in getattr(widget, "children", ()) or ():
        _texts(child, out)
    return out


def _english(texts):
    return [(words, t[:120]) for t in texts if (words := i18n.latin_words(t))]


def _everything():
    """Each widget and figure widgets/lessons.py offers, built as the notebooks call them (small inputs)."""
    from lab.allocation import flops_curve
    from widgets import lessons
    x, y, fit = _power_fit()
    built = [
        lessons.scaling_plot(x, y, fit, xlabel="N", title="", extra=([1e6], [1.9], "x"), labels=list("abcd")),
        *(lessons.curves_plot(_Store(), ["a", "b"], x=col, floor=1.25) for col in ("tokens_seen", "flops_seen", "step")),
        lessons.train_val_plot(_Store(), ["a"]),
    ]
    explorer = lessons.entropy_explorer()
    built.append(explorer)
    for fpt in (None, flops_curve([1e5, 1e6], [6e5, 6e6])):
        calc = lessons.budget_calculator(_chinchilla(), low=1e10, high=1e16, flops_per_token=fpt)
        calc.children[0].value = 1e13                      # the readout redraws in the current language
        built.append(calc)
    sched = lessons.schedule_explorer(50)
    built += [sched, sched.children[1]]                    # the controls and the learning-rate figure
    return built, explorer


def test_the_lesson_widgets_show_no_english_in_chinese(zh):
    built, explorer = _everything()
    explorer.children[1].value = 2                         # move a slider: the readout is redrawn, still Chinese
    texts = [t for w in built for t in _texts(w)]
    assert any(CJK.search(t) for t in texts)
    bad = _english(texts)
    assert not bad, f"{len(bad)} texts with English words, e.g.:\n" + "\n".join(map(str, bad[:15]))


def test_the_lesson_widgets_read_as_before_in_english():
    from widgets import lessons
    x, y, fit = _power_fit()
    fig = lessons.scaling_plot(x, y, fit, xlabel="N", title="t", labels=list("abcd"))
    assert fig.layout.yaxis.title.text == "validation loss (nats/token)"
    assert fig.data[0].name == "runs" and "<br>loss=%{y:.4f}" in fig.data[0].hovertemplate
    curves = lessons.curves_plot(_Store(), ["a"], x="tokens_seen", floor=1.25)
    assert curves.layout.xaxis.title.text == "tokens seen"
    assert curves.layout.annotations[0].text == "entropy rate 1.250 nats"
    explorer = lessons.entropy_explorer()
    assert [c.description for c in explorer.children[1:4]] == ["order", "symbols", "skew"]
    readout = explorer.children[4].value
    assert readout.startswith("<b>entropy rate</b> H = ") and " nats/token = " in readout
    assert readout.endswith(" &nbsp;|&nbsp; untrained model on 256 bytes: ln 256 = 5.5452 nats")
    calc = lessons.budget_calculator(_chinchilla(), low=1e10, high=1e16)
    assert re.fullmatch(r"With C = 1e\+13 FLOPs \(C = 6ND\) train <b>N = \S+</b> parameters on <b>D = \S+</b> "
                        r"tokens \(\S+ tokens per parameter\); predicted loss \d+\.\d{4} nats", calc.children[1].value)
    tv = lessons.train_val_plot(_Store(), ["a"])
    assert [t.name for t in tv.data] == ["train: 2 epochs, seed 0", "validation: 2 epochs, seed 0"]
