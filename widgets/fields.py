"""The run form's fields as plain data: name, type, default, bounds, label and help a student reads.

Built from the one table of run settings, `lab.schema`: every setting with a form section
becomes a field (its label, its tooltip, its slider range or dropdown). One table serves three
readers here: `controls` builds a widget per field, `controller` turns the values into a
`RunConfig`, and the share link (`?width=256&depth=4`) is parsed and written with the same
names, types and bounds. A link can also hide or lock controls, open a tab and start from a
named preset (`?preset=ladder&hide=optimizer,lr&lock=width&tab=scaling`); the presets are
plain data here (`PRESETS`). Pure Python; no widgets, no engine calls.
"""

import math
import os
import urllib.parse
from dataclasses import dataclass

from lab import schema
from lab.config import default
from lab.i18n import N_, _, lang_of
from lab.plans import CHINCHILLA_TOKENS_PER_PARAM, LADDER_LR
from lab.schema import number  # the one number parser, also fields.number in the app

DATASETS = {"stdlib": N_("Python source (built in, 11 MB)"), "builtin": N_("Python docs (built in, small: 0.46 MB)"),
            "markov": N_("synthetic (known entropy)"), "file": N_("my text file")}
PARAMS = {"standard": N_("standard"), "mup": N_("μP (maximal update)")}
TOKENIZERS = {"bytes": N_("bytes (UTF-8)"), "chars": N_("characters")}
LABELS = {"data": DATASETS, "param": PARAMS, "tokenizer": TOKENIZERS}   # a choice's values in its dropdown (marked)
OFFERED = {"data": tuple(DATASETS)}              # the app offers these choices only (no Hugging Face)
BATCHES = schema.BATCHES


@dataclass(frozen=True)
class Field:
    name: str                  # the query-string key and the form value's key
    kind: str                  # "int", "float", "choice"
    default: object
    label: str                 # the widget's description
    help: str                  # tooltip: what it is and what changing it does
    low: float | None = None   # the widget's range (the setting's suggested range; a link may go beyond it,
    high: float | None = None  # up to the config's bounds, and the widget widens to show it)
    choices: tuple = ()
    log: bool = False          # a log-scale slider
    section: str = ""          # the form's section (lab.schema.FORM_SECTIONS)
    path: str | None = None    # the setting's place in a RunConfig (None: not a RunConfig field)
    step: float | None = None  # a slider's (whole numbers) or a number box's (fractions) step; None: the default
    quick: object = None       # the default in quick mode


def _field(s: schema.Setting) -> Field:
    choices = OFFERED.get(s.key, s.choices) or s.presets
    low, high = (None, None) if choices else s.range
    return Field(s.key, "choice" if choices else s.kind, default(s.path), s.label, s.tip or s.help, low, high,
                 choices=tuple(choices), log=s.log, section=s.form, path=s.path if s.config else None, step=s.step,
                 quick=s.quick)


FIELDS = tuple(_field(s) for s in schema.SETTINGS if s.form)
BY_NAME = {f.name: f for f in FIELDS}

# Quick mode (SCALING_LAB_QUICK=1: tests, classroom demos on slow laptops): tiny defaults.
# The small Python docs corpus loads in milliseconds; the 11 MB source takes seconds.
QUICK = {f.name: f.quick for f in FIELDS if f.quick is not None}   # from the settings table (`quick=`)


def quick() -> bool:
    """Quick mode: SCALING_LAB_QUICK set to anything but "", "0", "false" or "False" (read each call).
    The only reader of the variable: the app and the lessons (`widgets.lessons.quick`) both ask here."""
    return os.environ.get("SCALING_LAB_QUICK", "0") not in ("", "0", "false", "False")


def shown(name: str, form: dict) -> bool:
    """Whether the form shows a control for these values: the vocabulary only with character tokens
    (bytes are always 256)."""
    return name != "vocab" or form.get("tokenizer") == "chars"


def defaults() -> dict:
    values = {f.name: f.default for f in FIELDS}
    return values | (QUICK if quick() else {})


def parse_value(field: Field, text: str):
    """One query value as the field's type, inside the config's bounds (`lab.schema`: `?lr=2` is
    accepted as `--lr 2` is, beyond the slider's range); ValueError says what is wrong."""
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
            raise ValueError(_("{name}={text} is not one of: {choices}").format(
                name=name, text=repr(text), choices=", ".join(map(str, choices))))
        return value
    try:
        value = number(text)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None
    if field.kind == "int":
        if value != int(value):
            raise ValueError(_("{name}={text} must be a whole number").format(name=name, text=repr(text)))
        value = int(value)
    s = schema.BY_KEY[name]
    low = s.low if s.low is not None else -math.inf
    high = s.high if s.high is not None else math.inf
    if not (low < value if s.open_low else low <= value) or value > high:
        if s.high is None:
            msg = (_("{name}={text} must be above {low}") if s.open_low else _("{name}={text} must be at least {low}"))
        else:
            msg = (_("{name}={text} must be above {low} and at most {high}") if s.open_low else
                   _("{name}={text} must be at least {low} and at most {high}"))
        raise ValueError(msg.format(name=name, text=repr(text), low=f"{low:g}", high=f"{high:g}"))
    return value


# --- the app's tabs and presets, also named in links -------------------------------------------

TABS = {"sweep": N_("Sweep"), "scaling": N_("Scaling"), "runs": N_("Runs"), "sample": N_("Sample text"),
        "share": N_("Share"), "class": N_("Class")}       # marked: the app shows _(TABS[key])
TEACHER_TABS = ("class",)        # shown to the teacher only

# A standard Transformer at the form's default size, on a fixed number of tokens (two presets' base).
_ONE_MODEL = {"arch": "gpt", "width": 64, "depth": 2, "heads": 4, "param": "standard", "optimizer": "adamw",
              "lr": 3e-3, "schedule": "cosine", "tokens_per_param": 0.0, "seeds": 1}

# Named starting points: plain data, applied over the defaults (`preset_values`). "values" are
# form settings; "tab" opens a tab; "sweep" sets the Sweep tab's inputs (Controller.set_sweep).
PRESETS = {
    "first-run": {
        "label": N_("first run"),
        "help": N_("A small model on the small built-in corpus that trains in seconds: press Train and watch the "
                   "loss fall"),
        "values": {"arch": "gpt", "width": 32, "depth": 2, "heads": 4, "context": 64, "param": "standard",
                   "optimizer": "adamw", "lr": 3e-3, "schedule": "cosine", "data": "builtin", "tokens": 100_000,
                   "tokens_per_param": 0.0, "batch": 16, "seeds": 1},
    },
    "ladder": {
        "label": N_("ladder"),
        "help": N_("A scaling ladder: μP at the ladder's tuned learning rate ({lr}), every size trained on "
                   "{tokens_per_param} tokens per parameter; the Sweep tab plans the sizes"),
        "values": {"arch": "gpt", "param": "mup", "optimizer": "adamw", "lr": LADDER_LR, "schedule": "cosine",
                   "tokens_per_param": float(CHINCHILLA_TOKENS_PER_PARAM), "seeds": 1},
        "tab": "sweep",
        "sweep": {"mode": "ladder", "ladder_tuned": True, "tokens_per_param": f"{CHINCHILLA_TOKENS_PER_PARAM:g}"},
    },
    "optimizers": {
        "label": N_("optimizers"),
        "help": N_("One model and one data size to compare optimizers: train it, change Optimizer (and its learning "
                   "rate), train again, and compare the curves"),
        "values": _ONE_MODEL | {"tokens": 200_000},
        "tab": "runs",
    },
    "data-limited": {
        "label": N_("data-limited"),
        "help": N_("A fixed small budget of 50k tokens: the Sweep tab trains ever bigger models on it, and the loss "
                   "stops falling with size once the data, not the model, is the limit"),
        "values": _ONE_MODEL | {"tokens": 50_000},
        "tab": "sweep",
        "sweep": {"mode": "grid", "widths": "16,32,64,128", "depths": "", "tokens": ""},
    },
}


def preset_label(key: str) -> str:
    """A preset's name in the current language."""
    return _(PRESETS[key]["label"])


def preset_help(key: str | None = None) -> str:
    """What preset `key` sets up, in the current language; without a key, the Preset control's tooltip
    (every preset's help)."""
    if key is not None:
        return _(PRESETS[key]["help"]).format(lr=f"{LADDER_LR:g}", tokens_per_param=CHINCHILLA_TOKENS_PER_PARAM)
    return _("Set the whole form in one click to a named starting point ({presets}). Change anything "
             "afterwards; a link can name one too: ?preset=ladder").format(
        presets=_("; ").join(_("{name}: {help}").format(name=preset_label(k), help=preset_help(k)) for k in PRESETS))


LINK_KEYS = ("preset", "hide", "lock", "tab", "teacher", "view", "name", "lang")   # a link's keys besides the form's
VIEWS = ("app", "class")         # view=class: the teacher's projector view (the class's queue and curves)


def preset_key(name: str) -> str:
    """A preset's key from a link or a label: `first run`, `First_Run` and `first-run` are one preset.
    ValueError (in words) for an unknown one."""
    key = "-".join(str(name).strip().lower().replace("_", " ").replace("-", " ").split())
    if key not in PRESETS:
        raise ValueError(_("unknown preset {name}; known: {known}").format(name=repr(name), known=", ".join(PRESETS)))
    return key


def preset_values(name: str) -> dict:
    """The form a preset sets: the defaults with the preset's values over them."""
    return defaults() | PRESETS[preset_key(name)]["values"]


def tab_key(name: str) -> str:
    """A tab's key (`scaling`) from a link, by key or title; ValueError (in words) for an unknown one."""
    text = str(name).strip().lower()
    for key, title in TABS.items():
        if text in (key, title.lower(), _(title).lower()):
            return key
    raise ValueError(_("tab={name} is not one of: {known}").format(name=repr(name), known=", ".join(TABS)))


@dataclass
class Link:
    """What a link asks for: form values (a preset's, with the link's own over them), hidden and
    locked controls (field names), a tab, the preset's key, and what could not be used, in words."""
    values: dict
    hide: tuple = ()
    lock: tuple = ()
    tab: str = ""
    preset: str = ""
    errors: tuple = ()
    teacher: str = ""          # the teacher token, as given (checked by the session, never shown)
    view: str = ""             # "class": the projector view
    name: str = ""             # a display name to start with
    lang: str = ""             # the page's language (lab.i18n.LANGS key); "" keeps the app's


def _names(text: str, key: str, errors: list) -> list:
    out = []
    for name in (t.strip().lower() for t in text.split(",")):
        if not name:
            continue
        if name not in BY_NAME:
            errors.append(_("{key}= names an unknown control {name}; known: {known}").format(
                key=key, name=repr(name), known=", ".join(BY_NAME)))
        elif name not in out:
            out.append(name)
    return out


def parse_link(query: str) -> Link:
    """`?preset=ladder&width=96&hide=optimizer,lr&lock=width&tab=scaling` -> a `Link`; also `teacher=`
    (the teacher token), `view=class` and `name=`. Unknown keys, names and bad values are reported in
    `errors`, never raised, so a broken link still opens the app."""
    values, errors, hide, lock, tab, preset = {}, [], [], [], "", ""
    extra = {"teacher": "", "view": "", "name": "", "lang": ""}
    for key, text in urllib.parse.parse_qsl((query or "").lstrip("?"), keep_blank_values=True):
        key = key.strip().lower()
        if key in ("hide", "lock"):
            names = _names(text, key, errors)
            target = hide if key == "hide" else lock
            target += [n for n in names if n not in target]
            continue
        if key in ("tab", "preset"):
            try:
                if key == "tab":
                    tab = tab_key(text)
                else:
                    preset = preset_key(text)
            except ValueError as e:
                errors.append(str(e))
            continue
        if key in extra:
            if key == "view" and text.strip().lower() not in VIEWS:
                errors.append(_("view={text} is not one of: {known}").format(text=repr(text), known=", ".join(VIEWS)))
                continue
            if key == "lang":
                try:
                    extra[key] = lang_of(text)
                except ValueError as e:
                    errors.append(str(e))
                continue
            extra[key] = text.strip().lower() if key == "view" else text.strip()
            continue
        field = BY_NAME.get(key)
        if field is None:
            errors.append(_("unknown setting {key} in the link; known: {known}").format(
                key=repr(key), known=", ".join([*BY_NAME, *LINK_KEYS])))
            continue
        try:
            values[field.name] = parse_value(field, text)
        except ValueError as e:
            errors.append(str(e))
    if preset:
        values = PRESETS[preset]["values"] | values      # the link's own settings override the preset's
        tab = tab or PRESETS[preset].get("tab", "")
    return Link(values, tuple(hide), tuple(lock), tab, preset, tuple(errors), **extra)


def format_query(values: dict, hide=(), lock=(), tab: str = "", lang: str = "") -> str:
    """The share link's query string: every field, so that a link means the same setup whatever
    the defaults of the app that opens it (an uploaded file cannot travel in a link); then the
    controls it hides and locks, the tab it opens and its language (other than English), if any."""
    keep = {f.name: values[f.name] for f in FIELDS if f.name in values}
    if keep.get("data") == "file":
        del keep["data"]
    items = {k: f"{v:g}" if isinstance(v, float) else v for k, v in keep.items()}
    order = list(BY_NAME)
    for key, names in (("hide", hide), ("lock", lock)):
        names = sorted(dict.fromkeys(n for n in names if n in BY_NAME), key=order.index)
        if names:
            items[key] = ",".join(names)
    if tab:
        items["tab"] = tab_key(tab)
    if lang and lang_of(lang) != "en":
        items["lang"] = lang_of(lang)
    return "?" + urllib.parse.urlencode(items, safe=",")

