"""The run form's fields as plain data: name, type, default, bounds, label and help a student reads.

One table serves three readers: `controls` builds a widget per field, `controller` turns the
values into a `RunConfig`, and the share link (`?width=256&depth=4`) is parsed and written with
the same names, types and bounds. Pure Python; no widgets, no engine calls.
"""

import math
import os
import urllib.parse
from dataclasses import dataclass

from lab.config import ARCHS, OPTIMIZERS, PARAMETERISATIONS, SCHEDULES

DATASETS = {"stdlib": "Python source (built in, 11 MB)", "builtin": "Python docs (built in, small: 0.46 MB)",
            "markov": "synthetic (known entropy)", "file": "my text file"}
PARAMS = {"standard": "standard", "mup": "μP (maximal update)"}
LABELS = {"data": DATASETS, "param": PARAMS}     # how a choice field's values read in its dropdown
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


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


FIELDS = (
    Field("arch", "choice", "gpt", "Architecture", "gpt: a decoder Transformer (GPT-2 style); lstm: the recurrent "
          "baseline Kaplan et al. (2020) compare against", choices=ARCHS),
    Field("width", "int", 64, "Width", "Size of each token's vector inside the model (d_model). Parameters grow "
          "like width²", 8, 2048),
    Field("depth", "int", 2, "Depth", "Number of Transformer blocks (or LSTM layers) stacked on top of each other",
          1, 48),
    Field("heads", "int", 4, "Heads", "Attention heads per block; the width must divide evenly between them", 1, 64),
    Field("context", "int", 64, "Context", "How many tokens (bytes) the model reads at once to predict the next",
          8, 1024),
    Field("param", "choice", "standard", "Parameterisation", "How the weights are initialised and how each layer's "
          "learning rate scales with width. standard: one learning rate for all (GPT-2). μP (maximal update "
          "parameterisation, Yang et al. 2022): a learning rate tuned on a small model (width 64) transfers to wider "
          "ones, so a scaling ladder needs no new tuning per size (Transformer and Adam-type optimizers)",
          choices=PARAMETERISATIONS),
    Field("data", "choice", "stdlib", "Dataset", "Python source: the standard library's own code, 11 MB, big enough "
          "for a scaling ladder without repeating the data. Python docs: the small (0.46 MB) English prose of "
          "Python's reference, for quick lessons. Synthetic: a random Markov chain whose best possible loss (its "
          "entropy) is known. My text file: upload one", choices=tuple(DATASETS)),
    Field("tokens", "int", 200_000, "Data (tokens)", "Training tokens D: how much text the model reads in total "
          "(bytes; repeats once the dataset is used up). Log scale. Not used when Tokens per parameter is set",
          1_000, 1_000_000_000, log=True),
    Field("tokens_per_param", "float", 0.0, "Tokens per parameter", "0: train on the Data (tokens) value. Above 0 the "
          "data follows the model size: D = this x N (all parameters); 20 is Chinchilla's compute-optimal ratio "
          "(Hoffmann et al. 2022), so a bigger model then reads more text", 0.0, 10_000.0),
    Field("optimizer", "choice", "adamw", "Optimizer", "The rule that turns gradients into weight updates; AdamW is "
          "the usual choice for Transformers", choices=OPTIMIZERS),
    Field("lr", "float", 3e-3, "Learning rate", "Peak step size. Too small learns slowly; too large diverges "
          "(the loss blows up). Log scale", 1e-5, 1.0, log=True),
    Field("schedule", "choice", "cosine", "Schedule", "How the learning rate changes after warmup: constant, cosine "
          "decay, linear decay, or warmup-stable-decay (wsd)", choices=SCHEDULES),
    Field("warmup", "float", 0.05, "Warmup", "Fraction of the steps spent raising the learning rate from 0 to its "
          "peak", 0.0, 0.5),
    Field("batch", "choice", 32, "Batch size", "Sequences per optimizer step; more is smoother but fewer steps for "
          "the same data", choices=BATCHES),
    Field("seed", "int", 0, "Seed", "Random seed for the initial weights and the order of the data", 0, 1_000_000),
    Field("seeds", "int", 1, "Seeds", "Train this many seeds (seed, seed+1, ...) at once to see the spread", 1, 8),
)
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
