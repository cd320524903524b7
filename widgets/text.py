"""The app's words: counts, sizes, runs, epochs and errors as a student reads them.

Plain helpers the panels and the controller share. This module imports neither ipywidgets nor
the heavy parts of `lab` (no JAX, no SciPy), so a panel can import it without the controller.
`reported` is here too: it turns any exception an action raises into words in the error area.
"""

import functools
import math

from lab import schema
from lab.config import ConfigError
from lab.trackers import STOP_REASONS
from lab.when import when_words  # noqa: F401  (re-exported: "trained 3 minutes ago")

STOP_WORDS = {why: schema.spell(parts, name=schema.app_name) for why, parts in STOP_REASONS.items()}


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


def epochs_flag(epochs) -> str:
    """'⚠ 6.5 epochs' for a run that saw its data more than lab.laws.MAX_EPOCHS times (its loss
    measures the data limit, not the model), else ''."""
    from lab.laws import MAX_EPOCHS  # here, not at the top: lab.laws loads SciPy
    if epochs is not None and math.isfinite(epochs) and epochs > MAX_EPOCHS:
        return f"⚠ {epochs:.1f} epochs"
    return ""


def run_label(row: dict) -> str:
    flag = epochs_flag(row.get("epochs"))
    return (f"{row['arch']} w{row['width']} d{row['depth']} · {fmt_count(row['planned_tokens'])} tok · "
            f"seed {row['seed']}" + (f" · attempt {row['attempt']}" if row.get("attempt") else "")
            + f" · {row['status']}" + (f" · {flag}" if flag else ""))

def reported(method):
    """A public action: any exception it raises is shown in the error area, in words, never
    lost in a log (a button's handler would swallow it); the action then returns None."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Exception as e:
            self.report(e, method.__name__.replace("_", " "))
            return None
    return wrapper
