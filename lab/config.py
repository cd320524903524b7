"""Frozen run configurations, their validation, JSON round-trip and a stable run id.

A run is fully described by a `RunConfig` (model, optimizer, data, and the run's own
numbers: tokens, batch, seed). Every field has one unit; every default says why. Invalid
values raise `ConfigError` (a `ValueError`) that names the value and how to fix it.
"""

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field

from lab.counting import param_counts
from lab.i18n import N_

# the choices are re-exported: `from lab.config import OPTIMIZERS` reads as the config's own
from lab.schema import (  # noqa: F401
    ARCHS,
    BY_PATH,
    OPTIMIZERS,
    PARAMETERISATIONS,
    POSITIONS,
    PRECISIONS,
    SCHEDULES,
    SETTINGS,
    SOURCES,
    Fix,
    Name,
    Say,
    plain_fix,
    plain_name,
    setting,
    spell,
)

MUP_OPTIMIZERS = ("adam", "adamw", "rmsprop", "adagrad", "lion", "adafactor")  # μP's Adam rules hold for these


class ConfigError(ValueError):
    """A configuration value a user can fix; the message says how.

    Built from parts: `lab.schema.Say` (words, in the language current when spelled), `lab.schema.Name`
    (a setting named), `lab.schema.Fix` (a value to set) and plain text, so that each front end spells
    the settings its own way (`spelled`); `str(error)` is the plain spelling (`width=64`), in the
    language current when the error was raised (English on the command line)."""

    def __init__(self, *parts):
        self.parts = parts
        super().__init__(spell(parts))

    def spelled(self, name=plain_name, fix=plain_fix) -> str:
        return spell(self.parts, name, fix)


def _refuse(path: str, what: Say, note: Say | None, fix, inside) -> None:
    hint = (Say(N_("; try {fix}"), fix=Fix(path, fix)),) if fix is not None and inside(fix) else ()
    if note:
        raise ConfigError(Say(N_("{name} must be {what} {note}"), name=Name(path), what=what, note=note), *hint)
    raise ConfigError(Say(N_("{name} must be {what}"), name=Name(path), what=what), *hint)


def _check(path: str, value, *, low=None, note: Say | None = None) -> None:
    """Refuse `value` for the setting at `path` unless it has the setting's type and lies within its
    bounds (lab.schema); `low` replaces the lower bound where it depends on another field."""
    s = BY_PATH[path]
    if s.kind == "choice":
        if value not in s.choices:
            raise ConfigError(Say(N_("unknown {what} {value}; choose one of: {choices}"), what=Say(s.words),
                                  value=repr(value), choices=", ".join(s.choices)))
        return
    low = s.low if low is None else low
    high = s.high
    if note is None and s.note:
        note = Say(s.note)                       # marked in lab.schema
    fix = default(path) if s.fix is None else s.fix
    if s.kind == "int":
        inside = lambda v: isinstance(v, int) and v >= low and (high is None or v <= high)
        if isinstance(value, bool) or not isinstance(value, int):
            _refuse(path, Say(N_("a whole number, got {value}"), value=repr(value)), None, fix, inside)
        if value < low or (high is not None and value > high):
            bounds = (Say(N_(">= {low}, got {value}"), low=low, value=value) if high is None
                      else Say(N_("between {low} and {high}, got {value}"), low=low, high=high, value=value))
            _refuse(path, bounds, note, fix, inside)
        return
    inside = lambda v: (v > low if s.open_low else v >= low) and (high is None or v <= high)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _refuse(path, Say(N_("a finite number, got {value}"), value=repr(value)), None, fix, inside)
    if not inside(value):
        if high is None:
            bounds = (Say(N_("> {low}, got {value}"), low=low, value=value) if s.open_low
                      else Say(N_(">= {low}, got {value}"), low=low, value=value))
        else:
            bounds = (Say(N_("> {low} and <= {high}, got {value}"), low=low, high=high, value=value) if s.open_low
                      else Say(N_(">= {low} and <= {high}, got {value}"), low=low, high=high, value=value))
        _refuse(path, bounds, note, fix, inside)


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    arch: str = "gpt"          # "gpt" (decoder Transformer), "lstm" (Kaplan et al. 2020, fig. 7) or "cnn" (causal
                               # dilated convolutions, WaveNet/ByteNet-style)
    width: int = 64            # residual stream size d_model (LSTM: hidden size; CNN: channels)
    depth: int = 2             # Transformer blocks (LSTM: stacked layers; CNN: convolutional blocks)
    heads: int = 4             # attention heads; width % heads == 0 (ignored by the LSTM and the CNN)
    context: int = 64          # tokens per training sequence
    vocab: int = 256           # byte-level tokens
    positions: str = "learned"  # "learned" table or "rotary" (RoPE) positions
    param: str = "standard"    # "standard" (GPT-2 init, one learning rate) or "mup" (maximal update
                               # parameterisation, Yang et al. 2022: a learning rate tuned at base_width transfers)
    base_width: int = 64       # μP only: the width at which μP equals the standard parameterisation
    head_dim: int = 0          # when > 0, heads is derived: width // head_dim (a fixed head size along a ladder)
    kernel: int = 0            # CNN only: taps per convolution; 0 = the smallest whose receptive field covers the
                               # context (lab.counting.conv_kernel), so the CNN sees as far back as the others

    def __post_init__(self):
        _check("model.arch", self.arch)
        _check("model.positions", self.positions)
        _check("model.param", self.param)
        _check("model.base_width", self.base_width)
        if self.param == "mup" and self.arch != "gpt":
            raise ConfigError(Say(N_("μP is implemented for the Transformer only, got architecture {arch}; use {fix}"),
                                  arch=repr(self.arch), fix=Fix("model.param", "standard")))
        _check("model.head_dim", self.head_dim)
        if self.head_dim > 0 and self.arch == "gpt":
            if self.width % self.head_dim:
                raise ConfigError(Say(N_("width must be a multiple of the head size, got width={width}, head size "
                                         "{head_dim}; try {fix}"), width=self.width, head_dim=self.head_dim,
                                      fix=Fix("model.width", max(1, self.width // self.head_dim) * self.head_dim)))
            object.__setattr__(self, "heads", self.width // self.head_dim)
        for name in ("width", "depth", "context", "vocab", "heads", "kernel"):
            _check(f"model.{name}", getattr(self, name))
        if self.arch == "cnn" and self.kernel == 1:
            raise ConfigError(Say(N_("a kernel of 1 tap sees no earlier token; use {fix} (the receptive field covers "
                                     "the context) or at least 2"), fix=Fix("model.kernel", 0)))
        if self.arch == "cnn" and self.kernel > self.context:
            raise ConfigError(Say(N_("kernel must be at most the context ({context} tokens), got {kernel}: taps "
                                     "beyond it would only ever see padding; try {fix}"), context=self.context,
                                  kernel=self.kernel, fix=Fix("model.kernel", self.context)))
        if self.arch == "gpt":
            if self.width % self.heads:
                raise ConfigError(Say(N_("width must be divisible by heads, got width={width}, heads={heads}; "
                                         "try {fix}"), width=self.width, heads=self.heads,
                                      fix=Fix("model.heads", math.gcd(self.width, self.heads) or 1)))
            if self.positions == "rotary" and (self.width // self.heads) % 2:
                raise ConfigError(Say(N_("rotary positions need an even head size, got width/heads = {size}; "
                                         "change heads or use {fix}"), size=self.width // self.heads,
                                      fix=Fix("model.positions", "learned")))


@dataclass(frozen=True, kw_only=True)
class OptimConfig:
    name: str = "adamw"        # see OPTIMIZERS
    lr: float = 3e-3           # peak learning rate; small models tolerate large rates
    schedule: str = "cosine"   # shape after warmup: constant, cosine, linear (to zero) or wsd
    warmup: float = 0.05       # fraction of steps spent warming up linearly from 0
    decay: float = 0.2         # WSD only: fraction of steps in the final linear decay
    final_lr_frac: float = 0.1  # cosine/linear/wsd end at lr * final_lr_frac
    weight_decay: float = 0.1  # decoupled (AdamW/Lion/Adafactor) or L2 (others); 0 disables
    clip: float = 1.0          # global gradient-norm clip; 0 disables
    b1: float = 0.9            # first-moment decay (Adam, Lion) / momentum (momentum, nesterov)
    b2: float = 0.95           # second-moment decay (Adam, RMSProp, Lion); 0.95 is the LLM norm
    eps: float = 1e-8
    z_loss: float = 0.0        # weight of the auxiliary loss z·mean(log Z)² on the softmax normaliser; 0 disables

    def __post_init__(self):
        for f in dataclasses.fields(self):
            _check(f"optim.{f.name}", getattr(self, f.name))

    def decay_steps(self, steps: int) -> int:
        """WSD: the final decay's steps in a run of `steps` (`decay` of them, at least 1); 1 otherwise."""
        return max(round(self.decay * steps), 1) if self.schedule == "wsd" else 1
        if self.schedule == "wsd" and self.warmup + self.decay > 1.0:
            raise ConfigError(Say(N_("warmup + decay must be <= 1 for WSD, got {warmup} + {decay}"),
                                  warmup=self.warmup, decay=self.decay))


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    source: str = "stdlib"     # stdlib (Python source, 11 MB), builtin (Python docs, 0.46 MB), synthetic markov
                               # chain, a text file, or a Hugging Face dataset
    path: str = ""             # file path (source="file") or dataset name (source="hf")
    hf_split: str = "train"
    hf_field: str = "text"
    markov_order: int = 2      # synthetic: context length of the chain
    markov_symbols: int = 16   # synthetic: alphabet size (mapped onto byte tokens)
    markov_zipf: float = 1.2   # synthetic: skew of each next-symbol distribution (0 = uniform)
    markov_seed: int = 0       # synthetic: which random chain (independent of the run's seed)
    markov_tokens: int = 1_000_000  # synthetic: length of the generated text
    val_fraction: float = 0.1  # held out for validation: the text's tail, or for stdlib whole files by hash
    tokenizer: str = "bytes"   # "bytes" (UTF-8 bytes, vocabulary 256) or "chars" (a token per character: the
                               # model.vocab - 1 most frequent of the training text, one token for all the others)

    def __post_init__(self):
        _check("data.source", self.source)
        if self.source in ("file", "hf") and not self.path:
            needs = (N_("data source {source} needs a text file path; pass {fix}") if self.source == "file"
                     else N_("data source {source} needs a dataset name; pass {fix}"))
            raise ConfigError(Say(needs, source=repr(self.source),
                                  fix=Fix("data.path", "PATH" if self.source == "file" else "hf:NAME")))
        _check("data.markov_order", self.markov_order)
        _check("data.markov_symbols", self.markov_symbols)
        if self.markov_symbols ** self.markov_order > 2 ** 20:
            raise ConfigError(Say(N_("markov_symbols**markov_order = {n} contexts is too many (limit 2**20); lower "
                                     "the order or the alphabet"), n=self.markov_symbols ** self.markov_order))
        for name in ("markov_zipf", "markov_seed", "markov_tokens", "val_fraction", "tokenizer"):
            _check(f"data.{name}", getattr(self, name))
        if self.tokenizer == "chars" and self.source == "markov":
            raise ConfigError(Say(N_("a synthetic source's symbols are its tokens already; use {fix} with it"),
                                  fix=Fix("data.tokenizer", "bytes")))


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    tokens: int = 200_000      # D: training tokens (steps = ceil(tokens / (batch * context)))
    tokens_per_param: float = 0.0  # when > 0, tokens is derived: D = tokens_per_param x params_total (a ladder's rule)
    batch: int = 32            # sequences per step
    seed: int = 0              # initialisation and batch order
    eval_tokens: int = 16_384  # held-out tokens per evaluation
    evals: int = 10            # evaluations spread over the run (the last one at the end)
    precision: str = "auto"    # auto: bf16 matmuls on GPU/TPU, fp32 on CPU
    target_loss: float = 0.0   # stop once an evaluation's validation loss is <= this (nats/token); 0 = off
    patience: int = 0          # stop once this many evaluations in a row did not beat the best; 0 = off
    attempt: int = 0           # 0: the run; k > 0: its k-th retrain, stored beside it under its own id (the store
                               # never overwrites a finished run); changes nothing that is trained
    cooldown_of: int = 0       # WSD only, > 0: a cooldown of a WSD run of this many tokens (the config otherwise
                               # the same): its warmup is that run's, so up to its own decay it trains exactly as
                               # that run does, and `lab.cooldown` trains it as a branch of that run (0: on its own)

    def __post_init__(self):
        _check("batch", self.batch)
        _check("seed", self.seed)
        _check("tokens_per_param", self.tokens_per_param)
        if self.tokens_per_param > 0:
            derived = max(self.batch * self.model.context, round(self.tokens_per_param * param_counts(self.model).total))
            object.__setattr__(self, "tokens", derived)
        _check("tokens", self.tokens)
        per_step = self.batch * self.model.context
        if self.tokens < per_step:
            raise ConfigError(Say(N_("tokens ({tokens}) is smaller than one batch (batch {batch} x context {context} "
                                     "= {per_step} tokens); use {fix} or more"), tokens=f"{self.tokens:g}",
                                  batch=self.batch, context=self.model.context, per_step=per_step,
                                  fix=Fix("tokens", per_step)))
        _check("eval_tokens", self.eval_tokens, low=self.model.context,
               note=Say(N_("(at least one context of {context})"), context=self.model.context))
        for f in dataclasses.fields(self):       # the others: bounds and choices from lab.schema alone
            if f.name not in ("model", "optim", "data", "batch", "seed", "tokens_per_param", "tokens", "eval_tokens"):
                _check(f.name, getattr(self, f.name))
        if self.data.tokenizer == "bytes" and self.model.vocab < 256:
            raise ConfigError(Say(N_("byte tokens take 256 values, more than a vocabulary of {vocab}; use {fix}, or "
                                     "{chars} for a smaller vocabulary of characters"), vocab=self.model.vocab,
                                  fix=Fix("model.vocab", 256), chars=Fix("data.tokenizer", "chars")))
        if self.cooldown_of:
            self._check_cooldown()
        if self.model.param == "mup" and self.optim.name not in MUP_OPTIMIZERS:
            raise ConfigError(Say(N_("μP's learning-rate rules here are those for Adam-type optimizers, got {name}; "
                                     "choose one of {choices} or the standard parameterisation"),
                                  name=repr(self.optim.name), choices=", ".join(MUP_OPTIMIZERS)))

    def _check_cooldown(self) -> None:
        _check("cooldown_of", self.cooldown_of)
        if self.optim.schedule != "wsd":
            raise ConfigError(Say(N_("a cooldown branches from the stable phase of a WSD run; got schedule {schedule}: "
                                     "use {fix}"), schedule=repr(self.optim.schedule), fix=Fix("optim.schedule", "wsd")))
        if self.cooldown_of < self.tokens:
            raise ConfigError(Say(N_("a cooldown of a run of {of} tokens cannot train {tokens}: the run it branches "
                                     "from must be at least as long; use {fix}"), of=f"{self.cooldown_of:,}",
                                  tokens=f"{self.tokens:,}", fix=Fix("cooldown_of", self.tokens)))
        if self.target_loss or self.patience:
            raise ConfigError(Say(N_("a cooldown trains all its steps; set {target} and {patience}"),
                                  target=Fix("target_loss", 0), patience=Fix("patience", 0)))
        if self.decay_start < self.warmup_steps:
            raise ConfigError(Say(N_("this cooldown would start its decay at step {start}, before the warmup of the "
                                     "run of {of} tokens ends (step {warmup}): the run is too short to branch from "
                                     "that one; train more tokens or lower the warmup"),
                                  start=self.decay_start, of=f"{self.cooldown_of:,}", warmup=self.warmup_steps))

    @property
    def warmup_steps(self) -> int:
        """Steps of warmup: `optim.warmup` of the steps (of the longer run's, for a cooldown)."""
        return round(self.optim.warmup * (math.ceil(self.cooldown_of / self.tokens_per_step) if self.cooldown_of
                                          else self.steps))

    @property
    def decay_start(self) -> int:
        """WSD: the first step of the final decay (the run's steps before it are its warmup and stable phase)."""
        return self.steps - self.optim.decay_steps(self.steps)

    @property
    def tokens_per_step(self) -> int:
        return self.batch * self.model.context

    @property
    def steps(self) -> int:
        return math.ceil(self.tokens / self.tokens_per_step)

    @property
    def tokens_trained(self) -> int:
        """Tokens actually seen: whole steps, so `tokens` rounded up to a multiple of one batch."""
        return self.steps * self.tokens_per_step

    def replace(self, **changes) -> "RunConfig":
        """Copy with top-level fields or nested ones (`model__width=128`, `optim__lr=1e-3`) changed."""
        nested: dict[str, dict] = {}
        top = {}
        for key, value in changes.items():
            part, sep, sub = key.partition("__")
            if sep:
                nested.setdefault(part, {})[sub] = value
            else:
                top[key] = value
        for part, sub in nested.items():
            top[part] = dataclasses.replace(getattr(self, part), **sub)
        return dataclasses.replace(self, **top)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """Inverse of `to_dict`; unknown keys are refused so that typos do not pass silently."""
        if not isinstance(d, dict):
            raise ConfigError(Say(N_("a run config must be a JSON object, got {type}"), type=type(d).__name__))
        parts = {"model": ModelConfig, "optim": OptimConfig, "data": DataConfig}
        kwargs = {}
        known = {f.name for f in dataclasses.fields(cls)}
        for key, value in d.items():
            if key not in known:
                raise ConfigError(Say(N_("unknown run config key {key}; known keys: {known}"), key=repr(key),
                                      known=", ".join(sorted(known))))
            if key in parts:
                sub_known = {f.name for f in dataclasses.fields(parts[key])}
                bad = set(value) - sub_known
                if bad:
                    raise ConfigError(Say(N_("unknown {part} config key(s) {keys}; known: {known}"), part=key,
                                          keys=str(sorted(bad)), known=", ".join(sorted(sub_known))))
                kwargs[key] = parts[key](**value)
            else:
                kwargs[key] = value
        return cls(**kwargs)

    @classmethod
    def from_settings(cls, values: dict) -> "RunConfig":
        """A RunConfig from settings by their path in `lab.schema` (`{"model.width": 128, "tokens": 200_000}`);
        the others at their defaults."""
        d: dict = {}
        for path, value in values.items():
            part, _, key = path.rpartition(".")
            (d.setdefault(part, {}) if part else d)[key] = value
        return cls.from_dict(d)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces); settings in `LATER_FIELDS` only when not at their default."""
        d = self.to_dict()
        for name, default in LATER_FIELDS.items():
            part, _, key = name.rpartition(".")
            where = d[part] if part else d
            if where.get(key) == default:
                del where[key]
        return json.dumps(d, sort_keys=True, separators=(",", ":"))

    @property
    def run_id(self) -> str:
        """Stable id: a hash of the canonical JSON of the whole config (seed included)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def value(self, path: str):
        """A setting's value by its path in `lab.schema` ("model.width", "tokens")."""
        part, _, name = path.rpartition(".")
        return getattr(getattr(self, part) if part else self, name)

    @property
    def shape_id(self) -> str:
        """Runs with the same shape id share one compiled program: the settings `lab.schema` marks
        `shape` (the model, batch, optimizer and whether it clips, as lab.optim builds one optimizer
        per (name, clip on/off), the data, the precision). The seed, learning rate, schedule (kind
        included), weight decay, clip value and tokens are data fed to that program, so they are
        left out. Not part of `run_id`."""
        shape = {s.path: self.value(s.path) > 0 if s.shape == "on" else self.value(s.path)
                 for s in SETTINGS if s.shape}
        return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]


def default(path: str):
    """A setting's default (`lab.schema` path or key): its dataclass field's default, or for a
    setting that is not a config field (the number of seeds) the table's own."""
    s = setting(path)
    if not s.config:
        return s.default_
    part, _, name = s.path.rpartition(".")
    cls = {"": RunConfig, "model": ModelConfig, "optim": OptimConfig, "data": DataConfig}[part]
    return next(f.default for f in dataclasses.fields(cls) if f.name == name)


# Settings added after runs were first stored (`later` in lab.schema), with their defaults. At
# their default they are left out of the canonical JSON, so that every run stored before them
# keeps its id.
LATER_FIELDS = {s.path: default(s.path) for s in SETTINGS if s.later}
