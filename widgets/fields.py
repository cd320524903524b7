"""The run form's fields as plain data: name, type, default, bounds, label and help a student reads.

Built from the one table of run settings, `lab.schema`: every setting with a form section
becomes a field (its label, its tooltip, its slider range or dropdown). One table serves three
readers here: `controls` builds a widget per field, `controller` turns the values into a
`RunConfig`, and the share link (`?width=256&depth=4`) is parsed and written with the same
names, types and bounds. Pure Python; no widgets, no engine calls.
"""

import math
import os
import urllib.parse
from dataclasses import dataclass

from lab import schema

DATASETS = {"stdlib": "Python source (built in, 11 MB)", "builtin": "Python docs (built in, small: 0.46 MB)",
            "markov": "synthetic (known entropy)", "file": "my text file"}
PARAMS = {"standard": "standard", "mup": "μP (maximal update)"}
LABELS = {"data": DATASETS, "param": PARAMS}     # how a choice field's values read in its dropdown
OFFERED = {"data": tuple(DATASETS)}              # the app offers these choices only (no Hugging Face)
BATCHES = schema.BATCHES


@dataclass(frozen=True)
class Field:
    name: str                  # the query-string key and the form value's key
    kind: str                  # "int", "float", "choice"
    default: object
    label: str                 # the widget's description
    help: str                  # tooltip: what it is and what changing it does
    low: float | None = None   # bounds of the widget (a query value outside is refused, not clamped)
    high: float | None = None
    choices: tuple = ()
    log: bool = False          # a log-scale slider
    section: str = ""          # the form's section (lab.schema.FORM_SECTIONS)
    path: str | None = None    # the setting's place in a RunConfig (None: not a RunConfig field)


def _field(s: schema.Setting) -> Field:
    choices = OFFERED.get(s.key, s.choices) or s.presets
    low, high = (None, None) if choices else s.range
    return Field(s.key, "choice" if choices else s.kind, s.default, s.label, s.tip or s.help, low, high,
                 choices=tuple(choices), log=s.log, section=s.form, path=s.path if s.config else None)


FIELDS = tuple(_field(s) for s in schema.SETTINGS if s.form)
BY_NAME = {f.name: f for f in FIELDS}

# Quick mode (SCALING_LAB_QUICK=1: tests, classroom demos on slow laptops): tiny defaults.
# The small Python docs corpus loads in milliseconds; the 11 MB source takes seconds.
QUICK = {"width": 16, "depth": 1, "heads": 2, "context": 32, "tokens": 4096, "batch": 8, "data": "builtin"}


def quick() -> bool:
    return os.environ.get("SCALING_LAB_QUICK", "0") not in ("", "0", "false", "False")


def defaults() -> dict:
    values = {f.name: f.default for f in FIELDS}
    return values | (QUICK if quick() else {})


def number(text: str) -> float:
    """A float that also reads `2e5`, `1_000` and `3k`/`2M`/`1G` (as the command line does)."""
    s = str(text).strip().replace("_", "")
    mult = {"k": 1e3, "m": 1e6, "g": 1e9}.get(s[-1:].lower())
    try:
        value = float(s[:-1]) * mult if mult else float(s)
    except ValueError:
        raise ValueError(f"{text!r} is not a number (examples: 3e-3, 2e5, 200k)") from None
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def parse_value(field: Field, text: str):
    """One query value as the field's type, inside its bounds; ValueError says what is wrong."""
    name = field.name
    if field.kind == "choice":
        choices = field.choices
        value = text.strip().lower()
        if isinstance(choices[0], int):
            try:
                value = int(number(value))
            except ValueError:
                value = None
        if value not in choices:
            raise ValueError(f"{name}={text!r} is not one of: {', '.join(map(str, choices))}")
        return value
    try:
        value = number(text)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None
    if field.kind == "int":
        if value != int(value):
            raise ValueError(f"{name}={text!r} must be a whole number")
        value = int(value)
    if not field.low <= value <= field.high:
        raise ValueError(f"{name}={text!r} is outside {field.low:g} to {field.high:g}")
    return value


def parse_query(query: str) -> tuple[dict, list[str]]:
    """`?width=256&depth=4` -> ({"width": 256, "depth": 4}, errors in words). Unknown keys and bad
    values are reported, never raised, so a broken link still opens the app."""
    values, errors = {}, []
    for key, text in urllib.parse.parse_qsl((query or "").lstrip("?"), keep_blank_values=True):
        field = BY_NAME.get(key.strip().lower())
        if field is None:
            errors.append(f"unknown setting {key!r} in the link; known: {', '.join(BY_NAME)}")
            continue
        try:
            values[field.name] = parse_value(field, text)
        except ValueError as e:
            errors.append(str(e))
    return values, errors


def format_query(values: dict) -> str:
    """The share link's query string: every field, so that a link means the same setup whatever
    the defaults of the app that opens it (an uploaded file cannot travel in a link)."""
    keep = {f.name: values[f.name] for f in FIELDS if f.name in values}
    if keep.get("data") == "file":
        del keep["data"]
    return "?" + urllib.parse.urlencode({k: f"{v:g}" if isinstance(v, float) else v for k, v in keep.items()})
