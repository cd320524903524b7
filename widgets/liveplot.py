"""The app's figure on the page: a small widget that draws a Plotly figure (its JSON, synced from
the kernel) with plotly.js, and redraws it in place (`Plotly.react`) when the figure changes.

Why not plotly's own FigureWidget: it ships all of plotly.js (4.9 MB) from every page's kernel
through the server inside the widget's module, and anywidget gives up on a module that takes
over 2 s to start, which a busy page often does: thirty pages opened at once on two cores left
pages stuck on "Loading widget..." or without their figure. Here the module is a few lines that
start at once; plotly.js (plotly's own bundle) is asked of the kernel when the figure is first
drawn, once per page, and run as a script (a page that already has `window.Plotly` skips it).
The Python side keeps plotly's `go.Figure` for building the picture (`widgets.plots`) and syncs
its JSON here.
"""

import functools
from pathlib import Path

import anywidget
import traitlets as tr

from lab.i18n import _

_ESM = """
let loading = null;
function addScript(src) {
  return new Promise((resolve, reject) => {
    const amd = window.define;          // a UMD bundle registers with an AMD loader instead of window
    window.define = undefined;
    const s = document.createElement("script");
    s.src = src;
    s.onload = () => { window.define = amd; resolve(); };
    s.onerror = (e) => { window.define = amd; reject(e); };
    document.head.appendChild(s);
  });
}
function fromKernel(model) {
  return new Promise((resolve) => {
    const take = (msg) => {
      if (msg && typeof msg.plotly === "string") { model.off("msg:custom", take); resolve(msg.plotly); }
    };
    model.on("msg:custom", take);
    model.send({ want: "plotly" });
  });
}
function plotly(model) {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!loading) loading = (async () => {
    const text = await fromKernel(model);
    await addScript(URL.createObjectURL(new Blob([text], { type: "text/javascript" })));
    return window.Plotly;
  })();
  return loading;
}
export default {
  async render({ model, el }) {
    el.style.width = "100%";
    el.textContent = model.get("loading_text") || "loading the plot…";
    const Plotly = await plotly(model);
    el.textContent = "";
    const draw = () => Plotly.react(el, model.get("figure_data"), model.get("figure_layout"),
                                    { responsive: true, displaylogo: false });
    model.on("change:figure_data", draw);
    model.on("change:figure_layout", draw);
    await draw();
    const seen = new ResizeObserver(() => { if (el.offsetWidth) Plotly.Plots.resize(el); });
    seen.observe(el);
    return () => { model.off("change:figure_data", draw); model.off("change:figure_layout", draw); seen.disconnect(); };
  }
};
"""


@functools.cache
def plotly_js_path() -> Path:
    """plotly.js as plotly ships it (a UMD bundle that defines window.Plotly)."""
    import plotly
    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


class LivePlot(anywidget.AnyWidget):
    """A Plotly figure drawn on the page: `figure_data` (traces) and `figure_layout` as plotly's JSON
    (not `layout`: that is the widget's own box layout)."""

    _esm = _ESM
    figure_data = tr.List().tag(sync=True)
    figure_layout = tr.Dict().tag(sync=True)
    loading_text = tr.Unicode("loading the plot…").tag(sync=True)   # shown until plotly.js has run

    def __init__(self, **kwargs):
        kwargs.setdefault("loading_text", _("loading the plot…"))
        super().__init__(**kwargs)
        self.on_msg(self._asked)

    def _asked(self, _widget, content, _buffers) -> None:
        if isinstance(content, dict) and content.get("want") == "plotly":
            self.send({"plotly": plotly_js_path().read_text()})
