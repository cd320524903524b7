"""`Lab()`: the whole app, composed of the form, the figure and the panels; the same object
displays in JupyterLab and in Voila (`voila notebooks/lab.ipynb`).

    from widgets import Lab
    Lab()                      # the last expression of a cell displays it
"""

import asyncio
import os
import threading

import ipywidgets as ipw

from widgets import fields
from widgets.controller import Controller
from widgets.controls import ConfigForm
from widgets.panels import Messages, PlotToolbar, RunsPanel, SamplePanel, ScalingPanel, SharePanel, SweepPanel
from widgets.plots import Plots
from widgets.presence import Presence
from widgets.state import AppState

TABS = tuple(fields.TABS.values())      # their keys (fields.TABS) name them in links: ?tab=scaling


class Lab(ipw.VBox):
    """The Scaling Lab app.

    Args:
        store: a `lab.store.RunStore`, a folder, or None for the default store
            ($SCALING_LAB_STORE, else ~/.local/share/scaling-lab). Every stored run is shown.
        query: a query string (`?width=256&depth=4`) that sets the controls; None reads
            $QUERY_STRING, which Voila sets from the page's address.
    """

    def __init__(self, store=None, query: str | None = None):
        if store is not None and not hasattr(store, "records"):
            from lab.store import RunStore
            store = RunStore(store)
        self.state = AppState()
        self.controller = c = Controller(self.state, store)
        self.form = ConfigForm(c)
        self.plots = Plots(self.state)
        self.messages = Messages(c)
        self.sweep = SweepPanel(c)
        self.scaling = ScalingPanel(c)
        self.runs = RunsPanel(c)
        self.sample = SamplePanel(c)
        self.share = SharePanel(c)
        self.tabs = ipw.Tab(children=[self.sweep, self.scaling, self.runs, self.sample, self.share], titles=TABS)
        keys = list(fields.TABS)
        self.tabs.observe(lambda change: c.open_tab(keys[change.new]) if change.new is not None else None,
                          names="selected_index")
        self.state.observe(lambda change: self._show_tab(), names="tab")
        self.toolbar = PlotToolbar(c)
        right = ipw.VBox([self.form.actions, self.toolbar, self.plots.fig, self.tabs],
                         layout=ipw.Layout(flex="1 1 600px", min_width="600px"))
        title = ipw.HTML("<h2 style='margin:4px 0'>Scaling Lab</h2><div style='color:#555'>Train small language "
                         "models, watch the loss fall, and fit the power laws that predict bigger ones.</div>")
        self.presence = Presence(c.page_gone)     # stops the job when the page is closed or reloaded
        self.form.add_class("lab-form")
        right.add_class("lab-right")
        self.body = ipw.HBox([self.form, right], layout=ipw.Layout(flex_flow="row wrap", width="100%"))
        super().__init__([title, self.messages, self.body, self.presence.widget],
                         layout=ipw.Layout(width="100%"))
        follow_link(c, query)

    def _show_tab(self):
        """The tab the state asks for (a link's `tab=`, a preset's tab)."""
        keys = list(fields.TABS)
        if self.state.tab in keys and self.tabs.selected_index != keys.index(self.state.tab):
            self.tabs.selected_index = keys.index(self.state.tab)


def follow_link(controller: Controller, query: str | None = None) -> None:
    """Apply the page's query string. Voila sets $QUERY_STRING before it runs the notebook; a
    kernel Voila preheated ran the notebook before any page asked for it, so the query arrives
    later: a thread waits for it (voila.utils.get_query_string) and hands it to the event loop,
    which also reloads the runs (the store may have grown since the kernel was preheated)."""
    if query is not None or os.environ.get("VOILA_PREHEAT", "False") == "False":
        return controller.apply_query(query)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = asyncio.get_event_loop()

    def wait():
        from voila.utils import get_query_string
        loop.call_soon_threadsafe(controller.page_opened, get_query_string() or "")

    threading.Thread(target=wait, name="scaling-lab query string", daemon=True).start()
