"""The app's words: counts, sizes, runs, epochs and errors as a student reads them.

Plain helpers the panels and the controller share. This module imports neither ipywidgets nor
the heavy parts of `lab` (no JAX, no SciPy), so a panel can import it without the controller.
`reported` is here too: it turns any exception an action raises into words in the error area.
"""

import functools
import math

from lab import schema
from lab.config import ConfigError
from lab.i18n import N_, _
from lab.trackers import STOP_REASONS
from lab.when import when_words  # noqa: F401  (re-exported: "trained 3 minutes ago")


# A run's status as the run table says it (marked here: the store's words are the keys).
STATUS_WORDS = {"done": N_("done"), "diverged": N_("diverged"), "running": N_("running"), "failed": N_("failed"),
                "interrupted": N_("interrupted"), "cancelled": N_("cancelled"), "claimed": N_("claimed"),
                "queued": N_("queued")}


def status_words(status: str) -> str:
    return _(STATUS_WORDS.get(status, status))


def stop_words(why: str) -> str:
    """Why a run stopped, as the app says it (in the current language)."""
    return schema.spell(STOP_REASONS[why], name=schema.app_name)


def fmt_count(n: float) -> str:
    """1234567 -> '1.23 M'."""
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.3g}"


def fmt_bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def in_words(error) -> str:
    """An engine error for the app: the settings it names and the values it suggests read as the
    form's labels ("try Width = 64"; the command line says "try --width 64"), so the way out
    names a control the student can see (lab.schema spells both)."""
    if isinstance(error, ConfigError):
        return error.spelled(schema.app_name, schema.app_fix)
    return str(error)


def kept_in_words(text: str) -> str:
    """An error another process kept in the store or the queue (`lab.schema.error_text`: a worker's
    training or sampling failure) as `in_words` spells one raised here: in the page's language, the
    settings named by their labels."""
    return schema.spell_error(text, schema.app_name, schema.app_fix)


def epochs_flag(epochs) -> str:
    """'⚠ 6.5 epochs' for a run that saw its data more than lab.laws.MAX_EPOCHS times (its loss
    measures the data limit, not the model), else ''."""
    from lab.laws import MAX_EPOCHS  # here, not at the top: lab.laws loads SciPy
    if epochs is not None and math.isfinite(epochs) and epochs > MAX_EPOCHS:
        return _("⚠ {epochs} epochs").format(epochs=f"{epochs:.1f}")
    return ""


def run_label(row: dict) -> str:
    flag = epochs_flag(row.get("epochs"))
    return (_("{arch} w{width} d{depth} · {tokens} tok · seed {seed}").format(
                arch=row["arch"], width=row["width"], depth=row["depth"], tokens=fmt_count(row["planned_tokens"]),
                seed=row["seed"])
            + (_(" · attempt {n}").format(n=row["attempt"]) if row.get("attempt") else "")
            + f" · {status_words(row['status'])}" + (f" · {flag}" if flag else ""))

# How the error area names the action that failed (a `reported` method's name, in words).
ACTIONS = {"again": N_("train again"), "apply_preset": N_("apply preset"), "apply_query": N_("apply query"),
           "browser": N_("browser"), "budget": N_("budget"), "clear_error": N_("clear error"),
           "clear_queue": N_("clear queue"), "delete_selected": N_("delete selected"), "export_csv": N_("export csv"),
           "fit": N_("fit"), "open_tab": N_("open tab"), "page_opened": N_("page opened"), "predict": N_("predict"),
           "refresh": N_("refresh"), "sample": N_("sample"), "select": N_("select"), "set": N_("set"),
           "set_compare": N_("set compare"), "set_family": N_("set family"), "set_holdout": N_("set holdout"),
           "set_lang": N_("set lang"), "set_limits": N_("set limits"), "set_name": N_("set name"),
           "set_plot_mode": N_("set plot mode"), "set_share": N_("set share"), "set_values": N_("set values"),
           "set_variable": N_("set variable"), "set_view": N_("set view"), "start": N_("start"), "stop": N_("stop"),
           "train_prediction": N_("train prediction"), "upload": N_("upload")}


def reported(method):
    """A public action: any exception it raises is shown in the error area, in words, never
    lost in a log (a button's handler would swallow it); the action then returns None."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Exception as e:
            self.report(e, _(ACTIONS.get(method.__name__, method.__name__.replace("_", " "))))
            return None
    return wrapper
