"""`Lab()`: the whole app, composed of the form, the figure and the panels; the same object
displays in JupyterLab and in Voila (`voila notebooks/lab.ipynb`).

    from widgets import Lab
    Lab()                      # the last expression of a cell displays it

The page is light: it asks the training service for runs and follows the store, and never
imports JAX (`widgets.session`). In JupyterLab a `Lab()` without a running service starts one
for its store, a process of its own that ends with the notebook's kernel.
"""

import asyncio
import html
import os
import threading

import ipywidgets as ipw

from lab import i18n
from lab.i18n import _
from widgets import fields
from widgets.controller import Controller
from widgets.controls import ConfigForm
from widgets.panels import (ClassPanel, Messages, PlotToolbar, RunsPanel, SamplePanel, ScalingPanel, SharePanel,
                            SweepPanel)
from widgets.plots import Plots
from widgets.presence import Presence
from widgets.state import AppState


class Lab(ipw.VBox):
    """The Scaling Lab app.

    Args:
        store: a `lab.store.RunStore`, a folder, or None for the default store
            ($SCALING_LAB_STORE, else ~/.local/share/scaling-lab). Every stored run is shown.
        query: a query string (`?width=256&depth=4`) that sets the controls; None reads
            $QUERY_STRING, which Voila sets from the page's address. `lang=zh` in it switches the
            page to Simplified Chinese.
        service: who trains: "auto" (a running training service, else one started now), "thread"
            (in this process: tests and scripts) or "external" (`scaling-lab app` runs it);
            default $SCALING_LAB_SERVICE, else "auto".
        lang: the app's language (`lab.i18n.LANGS`: "en", "zh"); default $SCALING_LAB_LANG (set by
            `scaling-lab app --lang`), else English. The language menu switches it.
    """

    def __init__(self, store=None, query: str | None = None, service: str | None = None, lang: str | None = None):
        if store is not None and not hasattr(store, "records"):
            from lab.store import RunStore
            store = RunStore(store)
        self.state = AppState()
        self.controller = c = Controller(self.state, store, service=service)
        # the language first, so that the views are built once: the argument, a link's lang= (unless a
        # preheated kernel, which learns its link later), $SCALING_LAB_LANG, else the kernel's language
        if lang is None and (query is not None or os.environ.get("VOILA_PREHEAT", "False") == "False"):
            lang = fields.parse_link(os.environ.get("QUERY_STRING", "") if query is None else query).lang or None
        c.form.set_lang(lang or os.environ.get("SCALING_LAB_LANG") or i18n.current())
        # stops the job when the page is closed or reloaded; says who the browser is
        self.presence = Presence(c.page_gone, on_hello=c.browser, on_beat=c.beat)
        super().__init__([], layout=ipw.Layout(width="100%"))
        self._handlers: list = []               # the views' observers of the state (dropped on a redraw)
        self._build()
        c.on_page_opened.append(self.presence.expect)
        follow_link(c, query)

    def _build(self) -> None:
        """The views, in the page's language: the form, the figure, the panels and the header. Built
        again when the language changes (`state.lang`: a link's `lang=`, the language menu), with the
        same controller, state and heartbeat; the old views are closed and stop observing."""
        with self.state.views(self._handlers):
            self._build_views()

    def _build_views(self) -> None:
        c, st = self.controller, self.state
        self.form = ConfigForm(c)
        self.plots = Plots(st)
        self.messages = Messages(c)
        self.tabs = ipw.Tab()
        self._built: dict = {}                  # tab key -> its panel, built when first shown (or asked for)
        self._blank: dict = {}                  # tab key -> the empty box that stands in for it until then
        self._show_tabs()
        self.tabs.observe(lambda change: self._tab_opened(change.new), names="selected_index")
        st.observe(lambda change: self._show_tab(), names="tab")
        st.observe(lambda change: self._show_tabs(), names="role")
        self.toolbar = PlotToolbar(c)
        right = ipw.VBox([self.form.actions, self.toolbar, self.plots.view, self.tabs],
                         layout=ipw.Layout(flex="1 1 600px", min_width="600px"))
        title = ipw.HTML("<h2 style='margin:4px 0'>Scaling Lab</h2><div style='color:#555'>{}</div>".format(
            html.escape(_("Train small language models, watch the loss fall, and fit the power laws that predict "
                          "bigger ones."))))
        self.name = ipw.Text(value=st.name, description=_("Your name"),
                             placeholder=_("so the teacher knows whose runs these are"),
                             style={"description_width": "80px"}, layout=ipw.Layout(width="360px"),
                             tooltip=_("Your name (or a nickname) appears beside your runs on the teacher's screen; "
                                       "no account is needed"))
        self.name.add_class("lab-name")
        self.name.observe(lambda change: self._named(change.new), names="value")
        self.lang = ipw.Dropdown(options=[(name, key) for key, name in i18n.LANGS.items()], value=st.lang,
                                 layout=ipw.Layout(width="120px"),
                                 tooltip=_("The app's language (a link can ask for one: ?lang=zh)"))
        self.lang.add_class("lab-lang")
        self.lang.observe(lambda change: c.form.set_lang(change.new), names="value")
        self.role = ipw.HTML()
        self.role.add_class("lab-role")
        st.observe(lambda change: self._show_who(), names=["name", "role"])
        self._show_who()
        self.form.add_class("lab-form")
        right.add_class("lab-right")
        self.body = ipw.HBox([self.form, right], layout=ipw.Layout(flex_flow="row wrap", width="100%"))
        self.full = ipw.HTML()
        self.full.add_class("lab-full")
        header = ipw.HBox([title, ipw.VBox([ipw.HBox([self.name, self.lang]), self.role])],
                          layout=ipw.Layout(justify_content="space-between", width="100%", flex_flow="row wrap"))
        st.observe(lambda change: self._show_full(), names="full")
        st.observe(lambda change: self._relabel(), names="lang")
        self._show_full()
        self.children = [header, self.messages, self.body, self.full, self.presence.widget]

    def _relabel(self) -> None:
        """The language changed: every view is built again in it (the state keeps what the page holds)."""
        old = [w for w in self.children if w is not self.presence.widget]
        old += [*self._blank.values(), *self._built.values()]     # panels not in a tab now, placeholders
        self.state.forget(self._handlers)
        self._build()
        live = _parts(self, set())                  # what the new views use (a layout may be shared)
        gone: set = set()
        for w in old:
            _parts(w, gone)
        for part in gone - live:
            part.close()

    def _named(self, name: str) -> None:
        self.controller.set_name(name)
        if self.state.name != name:
            self.name.value = self.state.name
        self.presence.remember_name(self.state.name)

    def _show_who(self) -> None:
        st = self.state
        if self.name.value != st.name:
            self.name.value = st.name
        teacher, student = html.escape(_("teacher")), html.escape(_("student"))
        self.role.value = ("<span style='color:#fff;background:#8a4baf;padding:1px 8px;border-radius:8px'>"
                           f"{teacher}</span>" if st.role == "teacher" else
                           f"<span style='color:#555'>{student}{' · ' + html.escape(st.name) if st.name else ''}"
                           "</span>")

    def _show_full(self) -> None:
        """A full class: the app gives way to a clear page that says so."""
        msg = self.state.full
        self.full.value = (f"<div class='lab-class-full' style='font-size:130%;padding:30px;background:#fff7e0;"
                           f"border:1px solid #e0c060;border-radius:6px'>{html.escape(msg)}</div>" if msg else "")
        self.body.layout.display = "none" if msg else ""

    # The panels of the tabs are built when first opened: a page that is not looked at costs no
    # widgets (a page's widget models are sent to its browser one by one when it connects; thirty
    # pages opening at once wait on every one of them).
    PANELS = {"sweep": SweepPanel, "scaling": ScalingPanel, "runs": RunsPanel, "sample": SamplePanel,
              "share": SharePanel, "class": ClassPanel}

    def panel(self, key: str):
        """The panel of tab `key`, built now if it was not yet (and put in its tab)."""
        if key not in self._built:
            with self.state.views(self._handlers):
                self._built[key] = self.PANELS[key](self.controller)
            keys = self._keys()
            if key in keys and self.tabs.children and self.tabs.children[keys.index(key)] is self._blank.get(key):
                children = list(self.tabs.children)
                children[keys.index(key)] = self._built[key]
                self.tabs.children = children
        return self._built[key]

    sweep = property(lambda self: self.panel("sweep"))
    scaling = property(lambda self: self.panel("scaling"))
    runs = property(lambda self: self.panel("runs"))
    sample = property(lambda self: self.panel("sample"))
    share = property(lambda self: self.panel("share"))
    classroom = property(lambda self: self.panel("class"))

    def _keys(self) -> list[str]:
        return [k for k in fields.TABS if k not in fields.TEACHER_TABS or self.state.role == "teacher"]

    def _show_tabs(self) -> None:
        """The tabs this page may see (the Class tab: the teacher only)."""
        keys = self._keys()
        want = keys.index(self.state.tab) if self.state.tab in keys else (self.tabs.selected_index or 0)
        children = [self._built.get(k) or (self.panel(k) if i == want else
                                          self._blank.setdefault(k, ipw.VBox())) for i, k in enumerate(keys)]
        if list(self.tabs.children) != children:
            self.tabs.children = children
            self.tabs.titles = [_(fields.TABS[k]) for k in keys]
        self._show_tab()

    def _tab_opened(self, index) -> None:
        keys = self._keys()
        if index is not None and index < len(keys):
            self.panel(keys[index])
            self.controller.form.open_tab(keys[index])
            if keys[index] == "class":
                self.controller.classroom.watch()

    def _show_tab(self):
        """The tab the state asks for (a link's `tab=`, a preset's tab)."""
        keys = self._keys()
        if self.state.tab in keys and self.tabs.selected_index != keys.index(self.state.tab):
            self.panel(self.state.tab)
            self.tabs.selected_index = keys.index(self.state.tab)

    def close(self):
        """Withdraw this page's requests and stop a training service it started itself."""
        self.controller.close()
        super().close()


def _parts(widget, out: set) -> set:
    """A widget, every widget under it, and their layouts and styles (to close what no view uses)."""
    if not isinstance(widget, ipw.Widget) or widget in out:
        return out
    out.add(widget)
    for child in getattr(widget, "children", ()) or ():
        _parts(child, out)
    for name in ("layout", "style"):
        part = getattr(widget, name, None)
        if isinstance(part, ipw.Widget):
            out.add(part)
    return out


def follow_link(controller: Controller, query: str | None = None) -> None:
    """Apply the page's query string. Voila sets $QUERY_STRING before it runs the notebook; a
    kernel Voila preheated ran the notebook before any page asked for it, so the query arrives
    later: a thread waits for it (voila.utils.get_query_string) and hands it to the event loop,
    which also reloads the runs (the store may have grown since the kernel was preheated)."""
    if query is not None or os.environ.get("VOILA_PREHEAT", "False") == "False":
        return controller.page_opened(query)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = asyncio.get_event_loop()

    def wait():
        from voila.utils import get_query_string
        loop.call_soon_threadsafe(controller.page_opened, get_query_string() or "")

    threading.Thread(target=wait, name="scaling-lab query string", daemon=True).start()
