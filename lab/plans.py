"""Sweep plans: grids, scaling ladders and IsoFLOP profiles, as frozen lists of configs.

A plan is pure: its configs (in training order, same-shape runs adjacent, seeds innermost),
each run's IsoFLOP budget, the points it left out and why, its compute; it knows nothing of
stores or executors. Its time is estimated from its configs (`lab.estimate.estimate`), and a
sweep (`lab.sweep.run_sweep`) trains it against a store.

- `grid`: width x depth x tokens x optimizer x lr x seed.
- `ladder`: sizes each trained on D = R x N tokens (one family, for a law and its check).
- `isoflop`: for each compute budget C and model size, D = C / flops_per_token, rounded to
  whole steps (Hoffmann et al. 2022, approach 2).
- `sweep`: one of the three as a front end asks for it (the command line's `scaling-lab sweep`,
  the app's Sweep tab): the one place for the rules of which inputs go together.
"""

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from lab.config import MUP_OPTIMIZERS, ConfigError, RunConfig
from lab.counting import flops_per_token, param_counts, run_flops
from lab.estimate import Estimate, format_seconds
from lab.i18n import N_, _
from lab.schema import Name, Say

CHINCHILLA_TOKENS_PER_PARAM = 20   # D ≈ 20 N at Chinchilla's optimum (Hoffmann et al. 2022); this lab measured ~100 (README)


@dataclass(frozen=True)
class Plan:
    """The runs of a sweep, in training order (same-shape runs adjacent, seeds innermost)."""
    configs: tuple[RunConfig, ...]
    budgets: tuple[float | None, ...] = ()   # IsoFLOP budget C of each run (None in grids)
    refused: tuple[str, ...] = ()            # points left out, each with its reason
    description: str = ""

    def __post_init__(self):
        if not self.budgets:
            object.__setattr__(self, "budgets", (None,) * len(self.configs))
        if len(self.budgets) != len(self.configs):
            raise ValueError(f"a plan needs one budget per config, got {len(self.budgets)} for {len(self.configs)}")
        ids = [c.run_id for c in self.configs]
        if len(set(ids)) != len(ids):
            raise ConfigError("a plan lists the same run twice; remove the duplicate values")

    def __len__(self) -> int:
        return len(self.configs)

    def __iter__(self):
        return iter(self.configs)

    @property
    def run_ids(self) -> tuple[str, ...]:
        return tuple(c.run_id for c in self.configs)

    @property
    def total_flops(self) -> float:
        return float(sum(run_flops(c) for c in self.configs))

    @property
    def shapes(self) -> int:
        """Distinct compiled programs the plan needs."""
        return len({c.shape_id for c in self.configs})

    def groups(self, max_seeds: int = 16) -> list[list[int]]:
        """Indices of runs that differ only by seed (trained together), at most `max_seeds` each."""
        by_key: dict[str, list[int]] = {}
        for i, c in enumerate(self.configs):
            by_key.setdefault(c.replace(seed=0).run_id, []).append(i)
        return [g[k:k + max_seeds] for g in by_key.values() for k in range(0, len(g), max(1, max_seeds))]

    def summary(self, est: Estimate) -> str:
        """Runs, FLOPs and the estimated time (`lab.estimate.estimate` of its configs against a
        store's records and a device), in a few lines for people, in the current language (`lab.i18n`).
        The plan's description and the reasons it left points out are the plan's own (English) words."""
        lines = [_("{description}: {n} runs over {shapes} shapes, {flops} training FLOPs").format(
            description=self.description or _("sweep"), n=len(self), shapes=self.shapes,
            flops=f"{self.total_flops:.3g}")]
        if est.done:
            lines.append("  " + _("{done} already finished in the store, {runs} to train ({flops} FLOPs)").format(
                done=est.done, runs=est.runs, flops=f"{est.flops:.3g}"))
        lines.append("  " + _("estimated time {time} ({source})").format(time=format_seconds(est.seconds),
                                                                          source=est.source))
        budgets = sorted({b for b in self.budgets if b is not None})
        for b in budgets:
            sizes = [c for c, cb in zip(self.configs, self.budgets) if cb == b]
            lines.append("  " + _("budget C={budget}: {sizes}").format(budget=f"{b:.3g}", sizes=", ".join(
                f"N={param_counts(c.model).total:,}/D={c.tokens_trained:,}" for c in sizes if c.seed == sizes[0].seed)))
        if any(c.tokens_per_param for c in self.configs):
            shapes = {}
            for c in self.configs:
                shapes.setdefault((c.model.width, c.model.depth), c)
            lines.append("  " + _("sizes: {sizes}").format(sizes=", ".join(
                f"{w}x{d} N={param_counts(c.model).total:,} D={c.tokens_trained:,}" for (w, d), c in shapes.items())))
        for reason in self.refused:
            lines.append("  " + _("left out: {reason}").format(reason=reason))
        return "\n".join(lines)


def _values(name: str, values, default) -> list:
    if values is None:
        return [default]
    values = list(dict.fromkeys(values))   # drop repeats, keep order
    if not values:
        raise ConfigError(f"{name} is empty; give at least one value or leave it out")
    return values


def grid(base: RunConfig, *, widths: Sequence[int] | None = None, depths: Sequence[int] | None = None,
         tokens: Sequence[int] | None = None, optimizers: Sequence[str] | None = None,
         lrs: Sequence[float] | None = None, seeds: Sequence[int] | None = None) -> Plan:
    """Every combination of the given values; a value left out keeps `base`'s.

    Raises:
        ConfigError: an empty list, or a combination that is not a valid config (the message
            names the point and the fix).
    """
    ws, ds = _values("widths", widths, base.model.width), _values("depths", depths, base.model.depth)
    ts = [int(t) for t in _values("tokens", tokens, base.tokens)]
    os_, ls = _values("optimizers", optimizers, base.optim.name), _values("lrs", lrs, base.optim.lr)
    ss = _values("seeds", seeds, base.seed)
    axes = {"widths": ws, "depths": ds, "optimizers": os_, "lrs": ls, "tokens": ts, "seeds": ss}
    configs = []
    for w, d, o, lr, t, s in itertools.product(ws, ds, os_, ls, ts, ss):
        try:
            configs.append(base.replace(model__width=w, model__depth=d, optim__name=o, optim__lr=lr, tokens=t, seed=s))
        except ConfigError as e:
            # the point, then the config's own parts: each front end still spells the fix its way
            raise ConfigError(f"grid point width={w}, depth={d}, optimizer={o}, lr={lr:g}, tokens={t:g}: ",
                              *e.parts) from None
    return Plan(configs=tuple(configs), description=_("grid: {axes}").format(axes=_axes_words(axes)))


# How a plan's description names the values it varies (in the current language: `lab.i18n`).
AXIS_WORDS = {"widths": N_("widths"), "depths": N_("depths"), "optimizers": N_("optimizers"), "lrs": N_("lrs"),
              "tokens": N_("tokens"), "seeds": N_("seeds")}


def _axes_words(axes: dict) -> str:
    return " x ".join(f"{_(AXIS_WORDS[k])} {','.join(f'{v:g}' if isinstance(v, float) else str(v) for v in vs)}"
                      for k, vs in axes.items())


# The default ladder (README, "Scaling laws that predict"), chosen by measurement on this
# 2-core CPU: eight Transformer sizes spanning 8.4x in parameters (63k to 526k), each trained
# on 20 tokens per parameter, in about 14 minutes. Its six smaller sizes span 4.5x: fitted on
# them, the law predicted widths 112, 136 and 160 within 0.8 % (pre-registered,
# bench/ladder-preregistration.md); fitted on five sizes spanning 3.2x it missed width 136 by
# 5 %, too short a span to pin E and α. Width 32 sat off the law of the larger sizes, so the
# ladder starts at 40. μP with the learning rate tuned at width 32 holds the rate right at
# every width (a standard-parameterisation ladder at the same rate missed by 6 %).
LADDER_WIDTHS = (40, 48, 56, 64, 80, 96, 112, 136)
LADDER_PARAM = "mup"
LADDER_LR = 3e-3
LADDER_EVAL_TOKENS = 65_536   # a held-out sample 4x the default: the laws compare losses to under 1 %


def ladder_base(base: RunConfig) -> RunConfig:
    """`base` with the ladder's tuned settings (μP, `LADDER_LR`, `LADDER_EVAL_TOKENS`) where they
    apply: μP only for the Transformer with an Adam-type optimizer (`lab.config.MUP_OPTIMIZERS`)."""
    out = base.replace(optim__lr=LADDER_LR, eval_tokens=max(base.eval_tokens, LADDER_EVAL_TOKENS))
    if base.model.arch == "gpt" and base.optim.name in MUP_OPTIMIZERS:
        out = out.replace(model__param=LADDER_PARAM)
    return out


def ladder(base: RunConfig, *, widths: Sequence[int] | None = None, depths: Sequence[int] | None = None,
           tokens_per_param: float = CHINCHILLA_TOKENS_PER_PARAM, optimizers: Sequence[str] | None = None,
           lrs: Sequence[float] | None = None, seeds: Sequence[int] | None = None) -> Plan:
    """A scaling ladder: models of several sizes, each trained on D = R x N tokens, with
    N = params_total (Hoffmann et al. 2022 count all parameters in their 20 tokens per
    parameter) and R = `tokens_per_param`. Every run is of one family, so a law fitted to
    the smaller rungs can be checked on the larger ones.

    Args:
        base: everything but width, depth and tokens (its depth is used when `depths` is None).
        widths: model widths (default `LADDER_WIDTHS`); combined with every depth as in `grid`.
        tokens_per_param: R (> 0).
        optimizers, lrs, seeds: as in `grid`.
    """
    if not (isinstance(tokens_per_param, (int, float)) and math.isfinite(tokens_per_param) and tokens_per_param > 0):
        raise ConfigError(f"tokens per parameter must be a positive number, got {tokens_per_param!r}; "
                          "Chinchilla's compute-optimal ratio is 20")
    base = base.replace(tokens_per_param=float(tokens_per_param))
    widths = widths or LADDER_WIDTHS
    plan = grid(base, widths=widths, depths=depths, optimizers=optimizers, lrs=lrs, seeds=seeds)
    axes = {"widths": _values("widths", widths, base.model.width), "depths": _values("depths", depths, base.model.depth),
            "optimizers": _values("optimizers", optimizers, base.optim.name),
            "lrs": _values("lrs", lrs, base.optim.lr), "seeds": _values("seeds", seeds, base.seed)}
    return Plan(configs=plan.configs, description=_(
        "ladder: {axes}, D = {ratio} x N (N = all parameters), {param}").format(
            axes=_axes_words(axes), ratio=f"{tokens_per_param:g}",
            param="μP" if base.model.param == "mup" else _("standard parameterisation")))


def aspect_depth(ratio: float) -> Callable[[int], int]:
    """A depth rule: depth = max(1, round(width / ratio)) (Kaplan et al. 2020 find loss flat over
    width/depth ratios of about 20 to 200)."""
    if not ratio > 0:
        raise ConfigError(f"the width/depth ratio must be positive, got {ratio}")
    return lambda width: max(1, round(width / ratio))


def _candidate_widths(base: RunConfig) -> list[int]:
    """Widths an IsoFLOP plan may pick: multiples of the heads (times 2 for rotary's even head
    size) for the Transformer, multiples of 8 for the LSTM, up to 4096."""
    m = base.model
    step = (m.heads * (2 if m.positions == "rotary" else 1)) if m.arch == "gpt" else 8
    return list(range(step, 4096 + 1, step))


def isoflop(base: RunConfig, budgets: Sequence[float], *, widths: Sequence[int] | None = None,
            n_sizes: int | None = None, depth: int | Callable[[int], int] | None = None,
            span: float = 4.0, tokens_per_param: float = CHINCHILLA_TOKENS_PER_PARAM,
            seeds: Sequence[int] | None = None) -> Plan:
    """IsoFLOP profiles (Hoffmann et al. 2022, approach 2): for each budget C, models of several
    sizes, each trained on D = C / flops_per_token tokens (the store's own FLOP count, so the
    run's recorded `flops` is C up to half a batch; flops_per_token ≈ 6N for large models).

    Args:
        base: everything but width, depth and tokens.
        budgets: compute budgets C in FLOPs.
        widths: the model widths to try at every budget; or
        n_sizes: pick this many widths per budget, their N (all parameters) spread evenly in
            log between N_opt / span and N_opt * span around the guess N_opt = sqrt(C / (6R)),
            from C ≈ 6ND and D = R·N with R = `tokens_per_param` (Chinchilla's 20 by default).
        depth: a fixed depth, or a rule width -> depth (see `aspect_depth`); default base's depth.
        seeds: seeds per point (default base's seed).

    Returns:
        A plan whose `refused` names the points left out: a size whose D is less than one batch.
    """
    given = [float(c) for c in budgets] if budgets is not None else []
    repeated = sorted({f"{c:.3g}" for c in given if given.count(c) > 1})
    if repeated:
        raise ConfigError(f"the budget(s) {', '.join(repeated)} are given more than once; an IsoFLOP profile needs "
                          "each budget once (give distinct budgets, e.g. 3e11,1e12,3e12)")
    budgets = [float(c) for c in _values("budgets", budgets, None)]
    for c in budgets:
        if not (math.isfinite(c) and c > 0):
            raise ConfigError(f"compute budgets must be positive FLOP counts, got {c}")
    if not (isinstance(span, (int, float)) and math.isfinite(span) and span > 1):
        raise ConfigError(f"span must be a number above 1 (sizes from N_opt/span to N_opt·span), got {span!r}")
    if not (isinstance(tokens_per_param, (int, float)) and math.isfinite(tokens_per_param) and tokens_per_param > 0):
        raise ConfigError(f"tokens_per_param (the guess the sizes centre on) must be positive, got {tokens_per_param!r}")
    if (widths is None) == (n_sizes is None):
        raise ConfigError("an IsoFLOP plan needs either widths=[...] or n_sizes=N (not both); "
                          "e.g. --isoflop-widths 32,64,128")
    if n_sizes is not None and (isinstance(n_sizes, bool) or not isinstance(n_sizes, int) or n_sizes < 1):
        raise ConfigError(f"n_sizes must be a positive whole number, got {n_sizes!r}")
    rule = depth if callable(depth) else (lambda w, d=depth or base.model.depth: d)
    ss = _values("seeds", seeds, base.seed)
    per_step = base.tokens_per_step
    configs, plan_budgets, refused = [], [], []
    seen: dict[str, float] = {}
    for c in budgets:
        if widths is not None:
            ws = list(dict.fromkeys(widths))
        else:
            cands = _candidate_widths(base)
            logn = np.log([param_counts(base.replace(model__width=w, model__depth=rule(w)).model).total
                           for w in cands])
            n_opt = math.sqrt(c / (6 * tokens_per_param))
            targets = np.geomspace(n_opt / span, n_opt * span, n_sizes) if n_sizes > 1 else [n_opt]
            ws = list(dict.fromkeys(cands[int(np.argmin(np.abs(logn - math.log(t))))] for t in targets))
        for w in ws:
            try:
                model_cfg = base.replace(model__width=w, model__depth=rule(w)).model
            except ConfigError as e:
                raise ConfigError(f"IsoFLOP width {w}: ", *e.parts) from None
            fpt = flops_per_token(model_cfg)
            d_tokens = c / fpt
            if d_tokens < per_step:
                refused.append(f"C={c:.3g}, width {w}: D = C / flops_per_token = {d_tokens:,.0f} tokens is less than "
                               f"one batch ({per_step:,} tokens); raise the budget or drop this size")
                continue
            tokens = round(d_tokens / per_step) * per_step
            for s in ss:
                cfg = base.replace(model__width=w, model__depth=model_cfg.depth, tokens=tokens, seed=s)
                if cfg.run_id in seen:
                    refused.append(f"C={c:.3g}, width {w}: the same run as at budget {seen[cfg.run_id]:.3g} "
                                   "(the budgets are closer than one batch)")
                    continue
                seen[cfg.run_id] = c
                configs.append(cfg)
                plan_budgets.append(c)
    if not configs:
        raise ConfigError("no IsoFLOP point has at least one batch of tokens: " + "; ".join(refused[:3]))
    shown = ",".join(f"{c:.3g}" for c in budgets)
    desc = (_("IsoFLOP: budgets {budgets} x widths {widths}").format(budgets=shown, widths=",".join(map(str, widths)))
            if widths is not None else
            _("IsoFLOP: budgets {budgets} x {n} sizes per budget").format(budgets=shown, n=n_sizes))
    return Plan(configs=tuple(configs), budgets=tuple(plan_budgets), refused=tuple(refused), description=desc)


STUDY_BUDGETS = tuple(float(c) for c in np.geomspace(3e11, 3e12, 5))   # 10x in compute, evenly in log
STUDY_TOKENS_PER_PARAM = 60.0   # where the study's sizes centre: a first look put the optimum at 66-149


def isoflop_study(base: RunConfig | None = None, *, budgets: Sequence[float] = STUDY_BUDGETS, n_sizes: int = 7,
                  span: float = 3.0, tokens_per_param: float = STUDY_TOKENS_PER_PARAM,
                  seeds: Sequence[int] = (0, 1)) -> Plan:
    """The lab's IsoFLOP study of its own compute-optimal split (`make isoflop`, bench/isoflop.py,
    lesson 3): the default ladder's family and rules (`ladder_base`: μP, its learning rate, its
    evaluation) at 5 budgets over 10x in compute, 7 sizes each from N_guess/3 to 3·N_guess around
    `tokens_per_param`, 2 seeds."""
    return isoflop(ladder_base(base or RunConfig()), list(budgets), n_sizes=n_sizes, span=span,
                   tokens_per_param=tokens_per_param, seeds=list(seeds))


def cooldown_plan(base: RunConfig, *, ratios: Sequence[float], widths: Sequence[int] | None = None,
                  depths: Sequence[int] | None = None, seeds: Sequence[int] | None = None) -> Plan:
    """Each size at several tokens per parameter from one WSD run (`lab.cooldown`): the run at the
    largest of `ratios` (D = R x N tokens, N = all parameters), with a cooldown branched from it at
    each smaller ratio. One family whose D varies at each N: what Chinchilla's L(N, D) (approach 3)
    is fitted to. `base` must use the WSD schedule; its tokens are set here.

    Raises:
        ConfigError: fewer than two ratios, a ratio not above 0, or a base that is not WSD or
            whose shortest run would end inside its warmup.
    """
    from lab.cooldown import cooldown_configs
    rs = sorted({float(r) for r in ratios})
    if len(rs) < 2 or any(not (math.isfinite(r) and r > 0) for r in rs):
        raise ConfigError(Say(N_("cooldowns need at least two different ratios of tokens per parameter above 0 (the "
                                 "largest is the long run), got {ratios}; e.g. 5,20,80"),
                              ratios=", ".join(f"{r:g}" for r in ratios) or "none"))
    configs = []
    for sized in grid(base.replace(tokens_per_param=0.0), widths=widths, depths=depths, seeds=seeds).configs:
        n, step = param_counts(sized.model).total, sized.tokens_per_step
        whole = lambda r: max(1, round(r * n / step)) * step            # R x N in whole steps
        long = sized.replace(tokens=whole(rs[-1]))
        for r in rs[:-1]:
            steps = whole(r) // step
            if steps - long.optim.decay_steps(steps) < long.warmup_steps:   # its decay_start, before it exists
                raise ConfigError(Say(N_("at {ratio} tokens per parameter the cooldown of width {width} ({tokens} tokens) "
                                         "would decay inside its long run's warmup (step {warmup}); raise the smallest "
                                         "ratio or lower {name}"), ratio=f"{r:g}", width=sized.model.width,
                                      tokens=f"{whole(r):,}", warmup=long.warmup_steps, name=Name("optim.warmup")))
        configs += [long, *cooldown_configs(long, [whole(r) for r in rs[:-1]])]
    configs.sort(key=lambda c: (c.model.width, c.model.depth, -c.tokens, c.seed))
    held = sum(c.tokens_trained for c in configs)
    trained = sum((c.steps - c.decay_start) * c.tokens_per_step if c.cooldown_of else c.tokens_trained for c in configs)
    return Plan(configs=tuple(configs), description=_(
        "cooldowns: each size at {ratios} tokens per parameter, the shorter as WSD cooldowns of the longest (the long "
        "runs and the cooldowns' decays train {trained} tokens, where training every run from the start would take "
        "{held}; the FLOPs and the time below count every run whole)").format(
            ratios=", ".join(f"{r:g}" for r in rs), trained=f"{trained:,}", held=f"{held:,}"))


KINDS = ("ladder", "grid", "isoflop", "cooldowns")


def sweep(kind: str, base: RunConfig, *, widths: Sequence[int] | None = None, depths: Sequence[int] | None = None,
          tokens: Sequence[int] | None = None, optimizers: Sequence[str] | None = None,
          lrs: Sequence[float] | None = None, seeds: Sequence[int] | None = None,
          tokens_per_param: float | None = None, budgets: Sequence[float] | None = None,
          n_sizes: int | None = None, aspect: float | None = None, tuned: bool = True,
          keep: frozenset[str] = frozenset(), ratios: Sequence[float] | None = None) -> Plan:
    """The plan a front end asks for, with the rules of which inputs go together in one place.

    - ladder: each run's tokens follow its size (R = `tokens_per_param`, default `base`'s or
      Chinchilla's 20), so `tokens` is refused; `tuned` applies `ladder_base` (μP, its rate and
      evaluation) except for the settings named in `keep` (paths the user set: "optim.lr",
      "model.param", "eval_tokens").
    - grid: every combination; `tokens` is refused while `base.tokens_per_param` sets tokens from size.
    - isoflop: each run's tokens follow its budget, so `tokens` and `tokens_per_param` are refused
      and `base.tokens_per_param` is ignored; one optimizer, one learning rate, and one depth or a
      depth rule (`aspect`, see `aspect_depth`); `widths` at every budget, or `n_sizes` per budget.
    - cooldowns: each size at every one of `ratios` tokens per parameter, the shorter as WSD
      cooldowns of the longest (`cooldown_plan`), so `tokens` and `tokens_per_param` are refused;
      tuned as a ladder is.
    """
    if kind not in KINDS:
        raise ConfigError(Say(N_("a sweep is a ladder, a grid, an IsoFLOP plan or cooldowns, not {kind}"),
                              kind=repr(kind)))
    many = lambda values: values is not None and len(values) > 1
    if kind == "cooldowns":
        if tokens is not None or tokens_per_param:
            raise ConfigError(Say(N_("cooldowns set each run's tokens from its size and the ratios; leave out {what}"),
                                  what=Name("tokens") if tokens is not None else Name("tokens_per_param")))
        if tuned:
            t = ladder_base(base)
            base = t.replace(**{path.replace(".", "__"): base.value(path) for path in keep})
        return cooldown_plan(base, ratios=ratios or (), widths=widths, depths=depths, seeds=seeds)
    if kind == "ladder":
        if tokens is not None:
            raise ConfigError(Say(N_("a ladder sets each run's tokens from its size ({ratio} x N); leave out {tokens} "
                                     "or sweep a grid"), ratio=Name("tokens_per_param"), tokens=Name("tokens")))
        ratio = tokens_per_param if tokens_per_param is not None else (base.tokens_per_param
                                                                       or CHINCHILLA_TOKENS_PER_PARAM)
        if tuned:
            t = ladder_base(base)
            base = t.replace(**{path.replace(".", "__"): base.value(path) for path in keep})
        return ladder(base, widths=widths, depths=depths, tokens_per_param=ratio, optimizers=optimizers, lrs=lrs,
                      seeds=seeds)
    if kind == "grid":
        if tokens_per_param:
            base = base.replace(tokens_per_param=float(tokens_per_param))
        if tokens is not None and base.tokens_per_param:
            raise ConfigError(Say(N_("{ratio} is {value}, so each run's tokens follow its size; set it to 0 to sweep "
                                     "tokens, or leave out {tokens}"), ratio=Name("tokens_per_param"),
                                  value=f"{base.tokens_per_param:g}", tokens=Name("tokens")))
        return grid(base, widths=widths, depths=depths, tokens=tokens, optimizers=optimizers, lrs=lrs, seeds=seeds)
    if tokens is not None or tokens_per_param:
        raise ConfigError(Say(N_("an IsoFLOP plan sets each run's tokens from its budget; leave out {what}"),
                              what=Name("tokens") if tokens is not None else Name("tokens_per_param")))
    if many(optimizers) or many(lrs):
        raise ConfigError(Say(N_("an IsoFLOP plan takes one optimizer and one learning rate")))
    if many(depths) or (depths and aspect is not None):
        raise ConfigError(Say(N_("an IsoFLOP plan takes one depth or a width/depth ratio, not both")))
    if widths is None and n_sizes is None:
        raise ConfigError(Say(N_("an IsoFLOP plan needs model sizes: the widths to try at every budget, or how many "
                                 "sizes per budget")))
    base = base.replace(tokens_per_param=0.0, **{k: v[0] for k, v in (("optim__name", optimizers),
                                                                     ("optim__lr", lrs)) if v})
    depth = aspect_depth(aspect) if aspect is not None else (depths[0] if depths else None)
    return isoflop(base, budgets, widths=widths, n_sizes=n_sizes, depth=depth, seeds=seeds)
