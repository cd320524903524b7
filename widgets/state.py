"""The app's state: one traitlets object that the views observe and only the controller writes.

Traits hold plain data (dicts, lists, strings), never widgets or engine objects, so a test can
read what the app shows without a browser. A trait notifies only when it is assigned a value
that differs from the old one: the controller always assigns new containers, never mutates.
"""

import contextlib

import traitlets as tr


class AppState(tr.HasTraits):
    # the run form
    form = tr.Dict()               # field name -> value (see widgets.fields.FIELDS)
    data_path = tr.Unicode("")     # the uploaded text file (data == "file"), a temp file
    config_error = tr.Unicode("")  # why the form's config cannot run, in words; "" when it can
    readouts = tr.Dict()           # parameters, FLOPs, tokens per parameter, time and memory estimates (text)
    share = tr.Unicode("")         # "?width=...&depth=..." for the current form
    stored = tr.Unicode("")        # the form's run is finished in the store: when, in words ("" if not); Train again
    preset = tr.Unicode("")        # the preset the form was set from (widgets.fields.PRESETS key); "" once changed

    # what a link asks of the page (widgets.fields.parse_link), and what the Share tab's link will ask
    hidden = tr.List()             # form field names whose controls are not shown
    locked = tr.List()             # form field names whose controls are shown but disabled
    tab = tr.Unicode("")           # the open tab (a widgets.fields.TABS key); "" before any is asked for
    share_options = tr.Dict({"hide": [], "lock": [], "tab": ""})   # the Share tab's choices for its link

    # runs: the store's rows (dicts, newest first) and the ones in flight
    runs = tr.List()
    live = tr.Dict()               # run id -> {"label", "params", "points": [metric dicts]} while training
    selected = tr.List()           # run ids chosen in the run table
    compare = tr.Bool(False)       # plot only the selected runs
    view = tr.Dict({"x_axis": "tokens", "log": True})  # the live panel: x axis (steps, tokens, flops), log-log

    # the current job
    job = tr.Unicode("")           # "", "train" or "sweep" (a job asks the queue and follows its runs)
    progress = tr.Dict()           # {"fraction": 0..1, "text": "..."}

    # sweeps and scaling
    sweep_plan = tr.Dict()         # {"text": cost in words, "runs": n, "error": ""}
    families = tr.List()           # the finished runs' families: {"key", "label", "sizes", "runs", "tokens_per_param"}
    family = tr.Unicode("")        # the family the scaling tab fits (a lab.family key; "" when there is none)
    holdout = tr.Int(0)            # a ladder's law: how many of the largest sizes are held out and predicted
    fit = tr.Dict()                # {"variable", "equation", "curve", "band", "frontier", "held_out", "warnings", ...}
    budget_text = tr.Unicode("")   # the budget calculator's answer
    prediction = tr.Dict()         # {"run_id", "loss", "text", "x"}: an extrapolation waiting for its check

    # text sampling and export
    sample_text = tr.Unicode("")
    download = tr.Unicode("")      # HTML link to the last CSV export

    # who this page is (widgets.session): a display name, student or teacher, and the queue's words
    name = tr.Unicode("")          # the display name the student typed (shown escaped, never as markup)
    role = tr.Unicode("student")   # "student" or "teacher" (the link's teacher token)
    queue_text = tr.Unicode("")    # this page's runs in the queue: place and estimated start, in words
    opened = tr.Bool(False)        # the page's link has been applied (until then Train would train the defaults)

    # the teacher's view of the class (widgets.classroom): open pages, what trains, what waits
    classroom = tr.Dict()          # {"pages": [...], "training": [...], "waiting": [...], "limits": {...}}
    class_live = tr.Dict()         # run id -> {"label", "params", "points"}: every student's live curve
    plot_mode = tr.Unicode("app")  # "app": this page's runs; "class": everyone's live curves (the projector)
    lang = tr.Unicode("en")        # the page's language (lab.i18n.LANGS key): the views redraw when it changes
    full = tr.Unicode("")          # why this page cannot join (the class is full), in words; "" when it can

    _collect = None                # while views are built: the list their observers are added to (`views`)

    @contextlib.contextmanager
    def views(self, handlers: list):
        """Observers registered inside are recorded in `handlers`, so that the views that made them
        can be dropped (the app redraws itself in another language) and stop observing."""
        was, self._collect = self._collect, handlers
        try:
            yield handlers
        finally:
            self._collect = was

    def observe(self, handler, names=tr.All, type="change"):
        super().observe(handler, names=names, type=type)
        if self._collect is not None:
            self._collect.append((handler, names, type))

    def forget(self, handlers: list) -> None:
        """Stop the observers `views` recorded."""
        for handler, names, type_ in handlers:
            self.unobserve(handler, names=names, type=type_)
        handlers.clear()

    # messages
    error = tr.Unicode("")         # the last error, in words (shown in the error area)
    notice = tr.Unicode("")        # the last thing that happened, in words
