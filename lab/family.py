"""Families of runs: the runs one scaling law may be fitted to.

Two runs belong to one family when everything but the model's size (width, depth) and its
training tokens is equal: architecture, heads, context and positions, the parameterisation,
the optimizer with its learning rate and schedule, batch, data, precision and the rule that
set the tokens (`tokens_per_param`). The seed and the evaluation settings do not change what
is trained and stay out too. Mixing families in one fit mixes laws (a ladder at 20 tokens
per parameter and a sweep at a fixed 200k tokens follow different curves), so fits take one
family at a time and refuse to pool, naming the fields that differ.

Pure Python on configs: the key is computed here and nowhere else.
"""

import hashlib
import json
from collections.abc import Iterable, Sequence

from lab.config import ConfigError, RunConfig
from lab.i18n import _
from lab.schema import SETTINGS

# Fields that vary inside a family ("part.name" for nested configs): those `lab.schema` marks
# `family=False` (size, tokens, seed, evaluation, attempt).
OUTSIDE = frozenset(s.path for s in SETTINGS if s.config and not s.family)


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= _flat(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out


def _outside(cfg: RunConfig) -> frozenset:
    # with a head-size rule the number of heads follows the width: it is part of the size
    return OUTSIDE | {"model.heads"} if cfg.model.head_dim else OUTSIDE


def family_fields(cfg: RunConfig) -> dict:
    """The config's fields that define its family, flat ("optim.lr": 0.003, ...)."""
    return {k: v for k, v in _flat(cfg.to_dict()).items() if k not in _outside(cfg)}


def family_key(cfg: RunConfig) -> str:
    """A short stable id of the family: a hash of its fields in the run id's canonical JSON (so
    settings added later, at their default, leave existing families' keys unchanged)."""
    fields = {k: v for k, v in _flat(json.loads(cfg.to_json())).items() if k not in _outside(cfg)}
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def family_label(cfg: RunConfig) -> str:
    """The family in a few words, for lists and legends."""
    m, o = cfg.model, cfg.optim
    param = _("μP base {width}").format(width=m.base_width) if m.param == "mup" else _("standard")
    tokens = (_("{ratio} tokens/param").format(ratio=f"{cfg.tokens_per_param:g}") if cfg.tokens_per_param
              else _("tokens as given"))
    return _("{arch} {param}, {optimizer} lr {lr} {schedule}, context {context}, batch {batch}, {data}, "
             "{tokens}").format(arch=m.arch, param=param, optimizer=o.name, lr=f"{o.lr:g}", schedule=o.schedule,
                                context=m.context, batch=cfg.batch, data=cfg.data.source, tokens=tokens)


def differing_fields(configs: Sequence[RunConfig]) -> dict[str, list]:
    """The family fields on which `configs` disagree, each with its values (in first-seen order)."""
    seen: dict[str, list] = {}
    for cfg in configs:
        for k, v in family_fields(cfg).items():
            vals = seen.setdefault(k, [])
            if v not in vals:
                vals.append(v)
    keys = set().union(*(family_fields(c) for c in configs)) if configs else set()
    return {k: seen[k] for k in sorted(keys) if len(seen[k]) > 1}


def group(configs: Iterable[RunConfig]) -> dict[str, list[int]]:
    """Indices of `configs` by family key, largest family first."""
    out: dict[str, list[int]] = {}
    for i, cfg in enumerate(configs):
        out.setdefault(family_key(cfg), []).append(i)
    return dict(sorted(out.items(), key=lambda kv: -len(kv[1])))


def check_one_family(configs: Sequence[RunConfig]) -> None:
    """Raise ConfigError, naming the differing fields, unless all `configs` are of one family."""
    diff = differing_fields(configs)
    if diff:
        parts = "; ".join(f"{k}: {', '.join(map(repr, v[:4]))}" for k, v in diff.items())
        raise ConfigError(_("these runs are of {n} families and a law is fitted to one family at a time; they "
                            "differ in {parts}. Choose one family (its runs differ only in size and tokens)").format(
            n=len(group(configs)), parts=parts))
