"""Every run setting, once: where it lives in a `RunConfig`, its type, bounds, unit, label and help.

One table, three readers:

- `lab.config` validates each field against its entry here (bounds, choices, the words of the
  message); a setting's default is its dataclass field's own (`lab.config.default`);
- the command line (`lab.cli.options.add_run_options`) makes a flag per entry for `scaling-lab train`
  and `scaling-lab sweep` (name, type, default, help; a sweep's list flags such as `--widths`);
- the app's run form (`widgets.fields`) makes a control per entry marked with a form section
  (label, tooltip, slider range, choices), and the share link uses the same names, checked
  against the same bounds as the config (a control widens to show a value beyond its slider).

Errors the engine raises name settings through `Name` and suggest values through `Fix`, so each
front end spells them its own way: `width must be ...; try --width 64` on the command line,
`Width must be ...; try Width = 64` in the app, `width=64` in plain `str(error)`.

A setting's other facts live in its entry too: whether it was added after runs were first
stored (`later`: `lab.config.LATER_FIELDS`, so old run ids stay), whether it shapes the compiled
program (`shape`: `RunConfig.shape_id`) and whether runs of one family share it (`family`:
`lab.family.OUTSIDE`).

To add a setting: add the field (with its default) to its dataclass in `lab.config` and an entry
to `SETTINGS` here (`later=True` for any setting added from now on); use it in the engine; test it. Pure Python;
of the lab's own it imports only `lab.i18n` (itself pure Python, with no lab imports): `lab.config` imports this module.

Languages (`lab.i18n`): a setting's `label`, `help`, `tip`, `word` and `note` (and `FORM_SECTIONS`) are English
marked with `N_` for the catalog; the app translates them with `_` where it shows them, the command line keeps
its --help in English. The words of an error are `Say` parts (an English template marked with `N_`, and its
values), which `spell` renders in the current language: English on the command line and in plain `str(error)`
there, the page's language in the app (`app_name` names a setting by its translated label).
"""

import json
import math
from dataclasses import dataclass

from lab.i18n import N_, _

ARCHS = ("gpt", "lstm", "cnn")
POSITIONS = ("learned", "rotary")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad", "lion", "adafactor")
SCHEDULES = ("constant", "cosine", "linear", "wsd")
SOURCES = ("stdlib", "builtin", "markov", "file", "hf")
TOKENIZERS = ("bytes", "chars")
PRECISIONS = ("auto", "fp32", "bf16")
PARAMETERISATIONS = ("standard", "mup")
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

FORM_SECTIONS = (N_("Model"), N_("Data"), N_("Optimizer"), N_("Run"))   # the app's run form, in this order


@dataclass(frozen=True)
class Setting:
    path: str                  # where it lives in a RunConfig: "model.width", "optim.lr", "tokens"
    kind: str                  # "int", "float", "choice" or "text"
    label: str                 # the app's label, and how the app names it in messages (marked N_; shown with _)
    help: str                  # one line: what it is and its unit (the command line's --help)
    low: float | None = None   # validity bounds: lab.config refuses a value outside them
    high: float | None = None
    open_low: bool = False     # `low` itself is refused (a learning rate must be > 0)
    choices: tuple = ()
    unit: str = ""             # "tokens", "sequences", "nats/token", "fraction of steps", ...
    name: str = ""             # short name: form key, link key, message word (default: the path's last part)
    word: str = ""             # how messages name it when not `name` ("learning rate"; translated where spelled)
    note: str = ""             # said after the bounds in a refusal, e.g. "(a fraction of the run's steps)"
    fix: object = None         # the value a refusal suggests (default: the default)
    default_: object = None    # only for settings that are not RunConfig fields (`lab.config.default`)
    config: bool = True        # a RunConfig field (False: how to run it, e.g. the number of seeds)
    later: bool = False        # added after runs were first stored: left out of the canonical JSON (and so of
                               # the run id) at its default, so that every run stored before keeps its id
    family: bool = True        # runs of one family share it (False: it varies along a family: size, tokens, seed)
    shape: str = ""            # in the compiled program's shape (`RunConfig.shape_id`): "value", or "on" for only
                               # whether it is non-zero (clip on or off); "": data fed to the program
    flag: str | None = ""      # command-line flag ("": --name with dashes; None: no flag)
    metavar: str | None = None
    sweep: bool = True         # `scaling-lab sweep` takes the flag too
    sweep_flag: str = ""       # ... or a list of values under this flag instead (--widths)
    sweep_help: str = ""       # the list flag's help
    form: str = ""             # the app's form section it appears in ("": not in the form)
    tip: str = ""              # the app's tooltip (default: help)
    suggest: tuple | None = None   # the app's slider range (low, high), inside the bounds
    presets: tuple = ()        # the app offers these values in a dropdown instead of a slider
    log: bool = False          # a log-scale slider
    step: float | None = None  # the app's control moves by this: a slider for a whole number, a number box for a
                               # fraction (None: a typed box, or for a fraction a slider in steps of 0.01)
    quick: object = None       # the app's and the lessons' default in quick mode (tiny models: tests, slow laptops)

    @property
    def key(self) -> str:
        return self.name or self.path.rpartition(".")[2]

    @property
    def words(self) -> str:
        return self.word or self.key

    @property
    def cli_flag(self) -> str | None:
        if self.flag is None:
            return None
        return self.flag or "--" + self.key.replace("_", "-")

    @property
    def range(self) -> tuple:
        """The app's slider range: the suggestion, else the validity bounds."""
        return self.suggest or (self.low, self.high)


S = Setting
SETTINGS = (
    # --- model
    S("model.arch", "choice", N_("Architecture"), N_("gpt: a decoder Transformer; lstm: the Kaplan baseline; cnn: a "
      "causal convolutional model (dilated, WaveNet/ByteNet-style)"),
      choices=ARCHS, word=N_("architecture"), form="Model",
      tip=N_("gpt: a decoder Transformer (GPT-2 style); lstm: the recurrent baseline Kaplan et al. (2020) compare "
          "against; cnn: a causal convolutional model, each block a dilated convolution over the past (dilations "
          "doubling per block, so it sees the whole context) and the Transformer's MLP"), shape="value"),
    S("model.width", "int", N_("Width"), N_("residual width d_model (LSTM: hidden size; CNN: channels)"), 1, 16384,
      unit="features", metavar="W", sweep_flag="--widths",
      sweep_help="widths; with --tokens-per-param the ladder's 32,48,64,80,96,128", form="Model",
      tip=N_("Size of each token's vector inside the model (d_model). Parameters grow like width²"), suggest=(8, 2048),
      step=8, quick=16, shape="value", family=False),
    S("model.depth", "int", N_("Depth"), N_("number of blocks / LSTM layers / CNN blocks"), 1, 256, unit="blocks",
      metavar="L",
      sweep_flag="--depths", sweep_help="depths", form="Model",
      tip=N_("Number of Transformer blocks (or LSTM layers, or convolutional blocks) stacked on top of each other"),
      suggest=(1, 48), step=1, quick=1, shape="value", family=False),
    S("model.heads", "int", N_("Heads"), N_("attention heads; must divide width"), 1, 1024, form="Model",
      tip=N_("Attention heads per block; the width must divide evenly between them"), suggest=(1, 64), quick=2, shape="value"),
    S("model.head_dim", "int", N_("Head size"), N_("when > 0, heads = width / head size (the head size stays fixed as "
      "width grows, as a ladder wants); 0: use --heads"), 0, 4096, unit="dimensions",
      tip=N_("0: the Heads value is used. Above 0 every attention head has this many dimensions and the number of "
          "heads follows the width, so models of a ladder differ in width only"), shape="value", later=True),
    S("model.kernel", "int", N_("Kernel size"), N_("cnn only: taps of each block's causal convolution; 0: the smallest "
      "kernel whose receptive field, with dilations doubling per block, covers the context"), 0, 65536, unit="taps",
      metavar="K",
      tip=N_("0: chosen so that the stacked convolutions see the whole context. Above 0: each block's convolution "
          "has this many taps, dilated 1, 2, 4, ... block by block"), shape="value", later=True),
    S("model.context", "int", N_("Context"), N_("tokens per sequence"), 2, 65536, unit="tokens", form="Model",
      tip=N_("How many tokens the model reads at once to predict the next. Byte tokens are bytes of UTF-8: an "
             "English letter is 1, a Chinese character 3, so a context of 64 holds about 64 letters or 21 Chinese "
             "characters; with character tokens it holds 64 characters of any language"), suggest=(8, 1024), step=8,
      quick=32, shape="value"),
    S("model.positions", "choice", N_("Positions"), N_("learned table or rotary (RoPE)"), choices=POSITIONS,
      word=N_("positions"), shape="value"),
    S("model.param", "choice", N_("Parameterisation"),
      N_("standard (GPT-2) or mup (maximal update parameterisation: a learning rate tuned at --base-width transfers "
      "to other widths)"), choices=PARAMETERISATIONS, word=N_("parameterisation"), form="Model",
      sweep_help="standard (GPT-2) or mup (maximal update parameterisation: a learning rate tuned at --base-width "
                 "transfers to other widths; a ladder's default is mup)",
      tip=N_("How the weights are initialised and how each layer's learning rate scales with width. standard: one "
          "learning rate for all (GPT-2). μP (maximal update parameterisation, Yang et al. 2022): a learning rate "
          "tuned on a small model (width 64) transfers to wider ones, so a scaling ladder needs no new tuning per "
          "size (Transformer and Adam-type optimizers)"), shape="value", later=True),
    S("model.base_width", "int", N_("Base width"), N_("with --param mup: the width where μP equals standard"), 1, 16384,
      shape="value", later=True),
    # --- optimizer
    S("optim.name", "choice", N_("Optimizer"), N_("the update rule"), choices=OPTIMIZERS, name="optimizer",
      word=N_("optimizer"), metavar="NAME",
      sweep_flag="--optimizers", sweep_help="optimizers", form="Optimizer",
      tip=N_("The rule that turns gradients into weight updates; AdamW is the usual choice for Transformers"),
      shape="value"),
    S("optim.lr", "float", N_("Learning rate"), N_("peak learning rate"), 0.0, 100.0, open_low=True,
      word=N_("learning rate"),
      metavar="LR", sweep_flag="--lrs", sweep_help="learning rates", form="Optimizer",
      tip=N_("Peak step size. Too small learns slowly; too large diverges (the loss blows up). Log scale"),
      suggest=(1e-5, 1.0), log=True),
    S("optim.schedule", "choice", N_("Schedule"), N_("learning-rate shape after warmup"), choices=SCHEDULES,
      word=N_("schedule"), form="Optimizer",
      tip=N_("How the learning rate changes after warmup: constant, cosine decay, linear decay, or "
          "warmup-stable-decay (wsd)")),
    S("optim.warmup", "float", N_("Warmup"), N_("fraction of steps warming up"), 0.0, 0.9, unit="fraction of steps",
      note=N_("(a fraction of the run's steps)"), form="Optimizer",
      tip=N_("Fraction of the steps spent raising the learning rate from 0 to its peak"), suggest=(0.0, 0.5)),
    S("optim.decay", "float", N_("Decay"), N_("WSD only: fraction of steps in the final decay"), 0.0, 1.0,
      unit="fraction of steps", note=N_("(a fraction of the run's steps)"), flag=None),
    S("optim.final_lr_frac", "float", N_("Final learning rate"), N_("cosine/linear/wsd end at lr x this"), 0.0, 1.0,
      flag=None),
    S("optim.weight_decay", "float", N_("Weight decay"), N_("weight decay; 0 = off"), 0.0, 10.0),
    S("optim.clip", "float", N_("Gradient clip"), N_("gradient-norm clip, 0 = off"), 0.0, shape="on"),
    S("optim.b1", "float", N_("b1"), N_("first-moment decay / momentum"), 0.0, 1.0, flag=None),
    S("optim.b2", "float", N_("b2"), N_("second-moment decay"), 0.0, 1.0, flag=None),
    S("optim.eps", "float", N_("eps"), N_("Adam's epsilon"), 0.0, 1.0, open_low=True, flag=None),
    S("optim.z_loss", "float", N_("z-loss"), N_("weight z of the auxiliary loss z·mean(log Z)², which keeps the "
      "softmax normaliser Z near 1 (PaLM and OLMo use 1e-4 against late divergence); 0: off. The recorded losses "
      "stay the cross-entropy"), 0.0, 1.0, metavar="Z", word=N_("z-loss"), later=True),
    # --- data
    S("data.source", "choice", N_("Dataset"),
      N_("stdlib (Python's standard library source, 11 MB), builtin (Python's docs, 0.46 MB), markov "
      "(synthetic, known entropy), a text file, or hf:NAME (needs `datasets`)"), choices=SOURCES, name="data",
      word=N_("data source"), metavar="SOURCE", form="Data",
      tip=N_("Python source: the standard library's own code, 11 MB, big enough for a scaling ladder without "
          "repeating the data. Python docs: the small (0.46 MB) English prose of Python's reference, for quick "
          "lessons. Synthetic: a random Markov chain whose best possible loss (its entropy) is known. My text "
          "file: upload one (UTF-8 plain text in any language; Chinese text works too, at 3 bytes a character: "
          "give it a longer context, or choose character tokens)"), quick="builtin", shape="value"),
    S("data.tokenizer", "choice", N_("Tokenizer"),
      N_("bytes (UTF-8 bytes, vocabulary 256) or chars (one token per character: the --vocab minus 1 most frequent "
      "characters of the training text, for Chinese and other non-Latin text)"), choices=TOKENIZERS,
      word=N_("tokenizer"), form="Data",
      tip=N_("What one token is. Bytes: one byte of UTF-8 text (an English letter is 1 byte, a Chinese character "
             "3), always 256 of them. Characters: one token per character, so a context of 64 holds 64 Chinese "
             "characters; the Vocabulary sets how many characters get their own token"),
      shape="value", later=True),
    S("model.vocab", "int", N_("Vocabulary"), N_("tokens in the vocabulary: 256 for byte tokens; with --tokenizer chars "
      "the most frequent vocab - 1 characters of the training text, and one token for every other character"),
      2, 1 << 20, metavar="V", word=N_("vocabulary"), form="Data",
      tip=N_("How many different tokens the model knows (with character tokens). The most frequent characters of "
             "the training text get a token each, all the others share one; the model's embedding and output layer "
             "have one row per token, so N grows with it. China's table of 3,500 common characters (1988) covers "
             "about 99.5 % of modern Chinese text"), suggest=(256, 16384), step=256, shape="value"),
    S("data.path", "text", N_("Text file"), N_("file path (source file) or dataset name (source hf)"), flag="--data",
      shape="value"),
    S("data.hf_split", "text", N_("Split"), N_("the Hugging Face dataset's split"), flag=None, shape="value"),
    S("data.hf_field", "text", N_("Field"), N_("the Hugging Face dataset's text field"), flag=None, shape="value"),
    S("data.markov_order", "int", N_("Markov order"), N_("synthetic chain order"), 1, 6, shape="value"),
    S("data.markov_symbols", "int", N_("Markov symbols"), N_("synthetic alphabet"), 2, 256, shape="value"),
    S("data.markov_zipf", "float", N_("Markov skew"), N_("synthetic: skew of each next-symbol distribution"), 0.0, 10.0,
      flag=None, shape="value"),
    S("data.markov_seed", "int", N_("Markov seed"), N_("synthetic: which random chain"), 0, flag=None, shape="value"),
    S("data.markov_tokens", "int", N_("Markov tokens"), N_("synthetic: length of the generated text"), 10_000, 100_000_000,
      flag=None, shape="value"),
    S("data.val_fraction", "float", N_("Validation fraction"), N_("share of the text held out for validation"), 0.0, 0.5,
      open_low=True, flag=None, shape="value"),
    # --- the run
    S("tokens", "int", N_("Data (tokens)"), N_("training tokens D, e.g. 2e5"), 1, 10 ** 15, unit="tokens", metavar="D",
      sweep_flag="--tokens", sweep_help="training tokens, e.g. 1e5,3e5", form="Data",
      tip=N_("Training tokens D: how much text the model reads in total (bytes; repeats once the dataset is used "
          "up). Log scale. Not used when Tokens per parameter is set"), suggest=(1_000, 1_000_000_000), log=True,
      quick=4096, family=False),
    S("seed", "int", N_("Seed"), N_("random seed"), 0, 2 ** 31 - 1, metavar="S", sweep_flag="--seeds",
      sweep_help="seeds, e.g. 0,1,2", form="Run",
      tip=N_("Random seed for the initial weights and the order of the data"), suggest=(0, 1_000_000), family=False),
    S("seeds", "int", N_("Seeds"), N_("train this many seeds (seed, seed+1, ...) at once through vmap"), 1, None,
      default_=1, config=False, sweep=False, form="Run",
      tip=N_("Train this many seeds (seed, seed+1, ...) at once to see the spread"), suggest=(1, 8)),
    S("tokens_per_param", "float", N_("Tokens per parameter"),
      N_("train each model on D = R x params_total tokens (Chinchilla: 20); replaces --tokens"), 0.0, 1e6,
      unit="tokens per parameter", fix=20, metavar="R", form="Data",
      tip=N_("0: train on the Data (tokens) value. Above 0 the data follows the model size: D = this x N (all "
          "parameters), so a bigger model then reads more text. 20 is Chinchilla's compute-optimal ratio at its "
          "scale (Hoffmann et al. 2022); this lab's own IsoFLOP study measured about 100 at 3e11-3e12 FLOPs "
          "(README, \"The compute-optimal split, measured\")"), suggest=(0.0, 10_000.0), step=1.0, later=True),
    S("cooldown_of", "int", N_("Cooldown of"), N_("WSD only: a cooldown of a WSD run of this many tokens, the same "
      "otherwise (it shares that run's warmup and stable phase; `lab.cooldown` trains it as a branch of that run); "
      "0: on its own"), 0, 10 ** 15, unit="tokens", metavar="D", flag=None, family=False, later=True),
    S("batch", "int", N_("Batch size"), N_("sequences per step"), 1, 1 << 16, unit="sequences", form="Optimizer",
      tip=N_("Sequences per optimizer step; more is smoother but fewer steps for the same data"), presets=BATCHES,
      quick=8, shape="value"),
    S("evals", "int", N_("Evaluations"), N_("validation evaluations per run"), 1, 10_000, family=False),
    S("eval_tokens", "int", N_("Evaluation tokens"), N_("held-out tokens per evaluation"), 1, 10 ** 9, unit="tokens",
      family=False),
    S("precision", "choice", N_("Precision"), N_("auto: bf16 matmuls on GPU/TPU, fp32 on CPU"), choices=PRECISIONS,
      word=N_("precision"), shape="value"),
    S("target_loss", "float", N_("Target loss"), N_("stop once the validation loss reaches this (nats/token); 0 = off"),
      0.0, 1000.0, unit="nats/token", form="Run",
      tip=N_("0: train all the planned tokens. Above 0: stop as soon as an evaluation's validation loss is at or below "
          "this many nats/token; the run is kept as done, with the step it stopped at"), suggest=(0.0, 8.0), later=True),
    S("patience", "int", N_("Patience"), N_("stop once the validation loss has not improved for this many evaluations; "
      "0 = off"), 0, 10_000, unit="evaluations", form="Run",
      tip=N_("0: never stop early. Above 0: stop when this many evaluations in a row have not beaten the best "
          "validation loss so far by more than 0.0001 nats/token (the run has stopped learning)"), suggest=(0, 100),
      later=True),
    S("attempt", "int", N_("Attempt"), N_("0: the run; k > 0: its k-th retrain, stored beside the finished run under its "
      "own id (set by Train again and `scaling-lab train --force`)"), 0, 10_000, flag=None, sweep=False,
      later=True, family=False),
)
del S

BY_PATH = {s.path: s for s in SETTINGS}
BY_KEY = {s.key: s for s in SETTINGS}


def number(text) -> float:
    """A number as people type it, the same in every front end (flags, form boxes, links): `3e-3`,
    `2e5`, `1_000`, and the suffixes k, M, G, T (`200k`, `2M`, `1t`). ValueError says what is wrong."""
    s = str(text).strip().replace("_", "")
    mult = {"k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}.get(s[-1:].lower())
    try:
        value = float(s[:-1]) * mult if mult else float(s)
    except ValueError:
        raise ValueError(f"{text!r} is not a number (examples: 3e-3, 2e5, 200k)") from None
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def setting(path_or_key: str) -> Setting:
    return BY_PATH.get(path_or_key) or BY_KEY[path_or_key]


# --- words that front ends spell their own way ------------------------------------------------

@dataclass(frozen=True)
class Name:
    """A setting named in a message: `width`, or the app's label "Width"."""
    path: str


@dataclass(frozen=True)
class Fix:
    """A value to set, in a message: `width=64`, `--width 64` on the command line, `Width = 64` in the app."""
    path: str
    value: object


@dataclass(frozen=True, init=False)
class Say:
    """Words of a message, in the language current where it is spelled: an English template marked
    for the catalog and its values by name, e.g.
    `Say(N_("{name} must be at least {low}, got {value}"), name=Name("model.width"), low=1, value=0)`.
    A value that is a `Name`, `Fix` or `Say` is spelled as the rest of the message (so the front end
    names the setting); any other is formatted as it is (give numbers already rounded, `repr`s as text)."""
    template: str
    values: tuple = ()

    def __init__(self, template: str, **values):
        object.__setattr__(self, "template", template)
        object.__setattr__(self, "values", tuple(values.items()))


def shown(v) -> str:
    """A value as messages and help texts write it: floats in `%g` form (0.003, 2e+05)."""
    return f"{v:g}" if isinstance(v, float) else str(v)


def plain_name(path: str) -> str:
    """A setting named in prose: its word ("learning rate", translated) or its name (`width`)."""
    s = BY_PATH.get(path)
    return (_(s.word) if s.word else s.key) if s else path


def plain_fix(path: str, value) -> str:
    s = BY_PATH.get(path)
    return f"{s.key if s else path}={shown(value)}"


def cli_name(path: str, *, sweep: bool = False) -> str:
    """A setting named by its flag (`--target-loss`; in a sweep `--widths`); one without a flag by
    its plain name."""
    s = BY_PATH.get(path)
    return (s and ((sweep and s.sweep_flag) or s.cli_flag)) or plain_name(path)


def cli_fix(path: str, value, *, sweep: bool = False) -> str:
    """`--width 64` (in a sweep `--widths 64`); a setting without a flag keeps its plain spelling."""
    s = BY_PATH.get(path)
    flag = s and ((sweep and s.sweep_flag) or s.cli_flag)
    return f"{flag} {shown(value)}" if flag else plain_fix(path, value)


def app_name(path: str) -> str:
    """A setting as the app names it: its form label, in the current language."""
    s = BY_PATH.get(path)
    return _(s.label) if s else path


def app_fix(path: str, value) -> str:
    s = BY_PATH.get(path)
    return f"{_(s.label)} = {shown(value)}" if s else plain_fix(path, value)


def spell(parts, name=plain_name, fix=plain_fix, *, english: bool = False) -> str:
    """A message from its parts: text, `Name`s, `Fix`es (spelled by the given functions) and `Say`s
    (their template in the current language, `lab.i18n._`, or in English, with the values filled in)."""
    if english and name is plain_name:
        name = _english_name
    return "".join(_spell_part(p, name, fix, english) for p in parts)


def _english_name(path: str) -> str:
    s = BY_PATH.get(path)
    return (s.word or s.key) if s else path


def _spell_part(p, name, fix, english=False) -> str:
    if isinstance(p, Name):
        return name(p.path)
    if isinstance(p, Fix):
        return fix(p.path, p.value)
    if isinstance(p, Say):
        values = {k: _spell_part(v, name, fix, english) if isinstance(v, (Name, Fix, Say)) else v
                  for k, v in p.values}
        return (p.template if english else _(p.template)).format(**values)
    return str(p)


# --- errors that travel: a worker's error spelled on the page, in the page's language ------------

PARTS_LINE = "\nparts: "     # after an error's English text: its parts as JSON (`error_text`)


def _part_json(p):
    if isinstance(p, Name):
        return {"name": p.path}
    if isinstance(p, Fix):
        return {"fix": p.path, "value": p.value if isinstance(p.value, (int, float, str, bool)) else str(p.value)}
    if isinstance(p, Say):
        return {"say": p.template, "values": {k: _part_json(v) if isinstance(v, (Name, Fix, Say)) else
                                              v if isinstance(v, (int, float, str)) else str(v) for k, v in p.values}}
    return str(p)


def _part_of(j):
    if isinstance(j, dict) and "name" in j:
        return Name(j["name"])
    if isinstance(j, dict) and "fix" in j:
        return Fix(j["fix"], j["value"])
    if isinstance(j, dict) and "say" in j:
        return Say(j["say"], **{k: _part_of(v) if isinstance(v, dict) else v for k, v in j["values"].items()})
    return str(j)


def error_text(error: BaseException) -> str:
    """How the store and the queue keep an error another process raised: `Type: message` in plain
    English, and for an error built of parts (a `ConfigError`) a second line holding them as JSON,
    so that the page that shows it spells it in its own language and names the settings its own
    way (`spell_error`). Readers of the first line alone (the command line, logs) see English."""
    parts = getattr(error, "parts", None)
    said = spell(parts, english=True) if parts else str(error)         # English whatever the page's language
    text = f"{type(error).__name__}: {said}" if said else type(error).__name__
    return text + PARTS_LINE + json.dumps([_part_json(p) for p in parts], ensure_ascii=False) if parts else text


def kept(*parts) -> str:
    """Words written into the store for a page to show, as `error_text` keeps an error: the plain
    English spelling first (what the command line and logs read), then the parts as JSON, which
    `spell_error` spells in the reader's language (why a run was refused or queued again)."""
    return spell(parts, english=True) + PARTS_LINE + json.dumps([_part_json(p) for p in parts], ensure_ascii=False)


def spell_error(text: str, name=plain_name, fix=plain_fix) -> str:
    """A kept error (`error_text`) in the current language, without its type's name when it is one
    the user can fix; one kept without parts (or older, or damaged) as its first line."""
    first, _sep, parts = text.partition(PARTS_LINE)
    for known in ("ConfigError: ", "StoreError: "):
        first = first.removeprefix(known)
    if not parts:
        return first
    try:
        return spell(tuple(_part_of(j) for j in json.loads(parts)), name, fix)
    except (ValueError, KeyError, TypeError, IndexError):
        return first
