"""A family's law: fitted on its smaller models, checked on its larger ones, and judged.

`fit_family(results, holdout=2)` takes the finished runs of one family (`lab.family`),
fits L(N) = E + A·N^-α to all but its `holdout` largest sizes (all seeds of a size as
points), predicts the held-out sizes with a bootstrap interval, and compares each with its
measurement. The bootstrap resamples the sizes and, within each size drawn, its seeds: the
interval carries both seed-to-seed noise and how much the law leans on each size (resampling
seeds alone, two seeds a size gave an interval that missed the measured loss of the largest
size; see the README).

It also says, in words, when the law should not be trusted (`FamilyLaw.warnings`): sizes
that span too little, a smallest model that sits off the law, an irreducible loss pinned at
a bound, intervals wider than a useful prediction, runs that repeat their data or that saw
too few tokens for their size. N is all parameters (`params_total`), the N of the ladder's
D = R·N.

Pure: results in, a frozen result out (numpy and `lab.fit`).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lab import fit as F
from lab.config import ConfigError
from lab.family import check_one_family, family_key, family_label

MIN_SIZES = 4              # three parameters (E, A, α) and one degree of freedom to judge them
MIN_SPAN = 3.0             # fitted sizes should span at least this factor in N, and a prediction reach no
                           # farther beyond the largest fitted size than the fitted sizes span
MAX_EPOCHS = 4.0           # past 4 epochs repeated data is worth much less (Muennighoff et al. 2023)
MIN_TOKENS_PER_PARAM = 10  # a fixed-D sweep whose largest model sees fewer is limited by data, not size
SMALL_END_SHIFT = 0.01     # leaving out the smallest size moves a prediction by more than this: flagged
TARGET_ERROR = 0.02        # an interval wider than ±2 % cannot tell a good prediction from a bad one
E_LOW = 0.05               # E below 5 % of the smallest loss: pinned at zero


@dataclass(frozen=True)
class Size:
    """One model size of a family: its seeds' final validation losses."""
    width: int
    depth: int
    N: int                  # params_total
    D: int                  # training tokens (the largest over its seeds)
    losses: tuple           # one per seed
    epochs: float

    @property
    def mean(self) -> float:
        return float(np.mean(self.losses))

    @property
    def sd(self) -> float:
        """Seed-to-seed standard deviation (nan with one seed)."""
        return float(np.std(self.losses, ddof=1)) if len(self.losses) > 1 else math.nan


@dataclass(frozen=True)
class Prediction:
    """The law's loss at a size, with its interval and, once trained, the measurement."""
    N: float
    predicted: float
    low: float
    high: float
    width: int | None = None
    depth: int | None = None
    D: float | None = None
    measured: float = math.nan    # mean over seeds
    sd: float = math.nan
    seeds: int = 0

    @property
    def rel_error(self) -> float:
        """(predicted − measured) / measured; nan until measured."""
        return (self.predicted - self.measured) / self.measured if self.seeds else math.nan

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("width", "depth", "N", "D", "predicted", "low", "high", "measured", "sd",
                                           "seeds")}
        return d | {"rel_error": self.rel_error}


@dataclass(frozen=True, eq=False)
class FamilyLaw:
    """L(N) = E + A·N^-α of one family, with held-out checks and the reasons to doubt it."""
    family: str
    label: str
    fit: F.PowerLawFit
    intervals: dict                # E, A, alpha -> lab.fit.Interval
    samples: dict                  # bootstrap samples of E, A, alpha (converged resamples)
    confidence: float
    interval_from: str             # "sizes and seeds" or "sizes" (one seed a size): what the bootstrap resampled
    fitted: tuple                  # Size, smallest first
    held_out: tuple                # Prediction per held-out size, smallest first
    warnings: tuple                # sentences; empty when nothing speaks against the law
    tokens_per_param: float        # the family's R (0: tokens as given)

    @property
    def trusted(self) -> bool:
        return not self.warnings

    def equation(self) -> str:
        return self.fit.equation()

    def predict(self, N) -> Prediction:
        """The law's loss at `N` parameters with its bootstrap interval."""
        N = float(N)
        if not (math.isfinite(N) and N > 0):
            raise ConfigError(f"a model size must be a positive number of parameters, got {N!r}")
        s = self.samples
        draws = s["E"] + s["A"] * N ** -s["alpha"] if len(s.get("A", ())) else np.array([])
        q = 100 * np.array([(1 - self.confidence) / 2, (1 + self.confidence) / 2])
        low, high = np.percentile(draws, q) if draws.size else (math.nan, math.nan)
        return Prediction(N=N, predicted=float(self.fit.predict(N)), low=float(low), high=float(high))

    @property
    def max_abs_rel_error(self) -> float:
        errs = [abs(p.rel_error) for p in self.held_out]
        return float(max(errs)) if errs else math.nan

    def to_dict(self) -> dict:
        f = self.fit
        return {"family": self.family, "label": self.label, "equation": self.equation(),
                "fit": {"E": f.E, "A": f.A, "alpha": f.alpha, "converged": f.converged, "n_points": f.n_points},
                "intervals": {k: vars(v) for k, v in self.intervals.items()}, "confidence": self.confidence,
                "interval_from": self.interval_from, "tokens_per_param": self.tokens_per_param,
                "fitted": [{"width": z.width, "depth": z.depth, "N": z.N, "D": z.D, "mean": z.mean, "sd": z.sd,
                            "seeds": len(z.losses), "epochs": z.epochs} for z in self.fitted],
                "held_out": [p.to_dict() for p in self.held_out], "max_abs_rel_error": self.max_abs_rel_error,
                "warnings": list(self.warnings), "trusted": self.trusted}


def newest_attempts(results: Sequence) -> list:
    """One result per run (config and seed): of several attempts at it ("Train again"), the newest
    finished one, so that a retrain is not counted as another seed."""
    best: dict[str, object] = {}
    for r in results:
        key = r.config.replace(attempt=0).run_id
        if key not in best or r.config.attempt > best[key].config.attempt:
            best[key] = r
    return list(best.values())


def sizes(results: Sequence) -> list[Size]:
    """The runs (RunResult) grouped by model size, smallest first; diverged or unfinished runs left
    out, and of several attempts at one run only the newest."""
    by: dict[tuple, list] = {}
    finished = [r for r in results if r.status == "done" and math.isfinite(r.eval_loss)]
    for r in newest_attempts(finished):
        by.setdefault((r.params_total, r.config.model.width, r.config.model.depth), []).append(r)
    out = []
    for (n, w, d), rs in sorted(by.items()):
        if len({r.tokens for r in rs}) > 1:
            raise ConfigError(f"the runs of width {w}, depth {d} were trained on different numbers of tokens "
                              f"({', '.join(sorted({f'{r.tokens:,}' for r in rs}))}); a law in N alone needs one D "
                              "per size: fit Chinchilla's L(N, D) to them, or train a ladder (D = 20 x N)")
        out.append(Size(width=w, depth=d, N=n, D=max(r.tokens for r in rs), losses=tuple(r.eval_loss for r in rs),
                        epochs=max(r.epochs for r in rs)))
    return out


def _points(fit_points: list[Size]) -> tuple[np.ndarray, np.ndarray]:
    """(N, loss) with every seed of every size a point."""
    return (np.array([z.N for z in fit_points for _ in z.losses], float),
            np.array([l for z in fit_points for l in z.losses], float))


def _predictions(fit_points: list[Size], *, n_boot: int, seed: int, confidence: float):
    N, loss = _points(fit_points)
    law = F.fit_power_law(N, loss, variable="N")
    seeded = all(len(z.losses) > 1 for z in fit_points)
    strata = np.repeat(np.arange(len(fit_points)), [len(z.losses) for z in fit_points])
    boot = F.bootstrap(N, None, loss, law="kaplan-n", n=n_boot, seed=seed, confidence=confidence, strata=strata,
                       resample_strata=True)
    return law, boot, "sizes and seeds" if seeded else "sizes"


def fit_family(results: Sequence, *, holdout: int = 0, bootstrap: int = 400, seed: int = 0,
               confidence: float = 0.95) -> FamilyLaw:
    """Fit one family's L(N) on all but its `holdout` largest sizes and check it on those.

    Args:
        results: finished runs (RunResult) of one family; diverged ones are left out.
        holdout: how many of the largest sizes to hold out and predict.
        bootstrap: resamples for the intervals.

    Raises:
        ConfigError: runs of several families (the message names the fields that differ), or
            fewer than MIN_SIZES sizes left to fit.
    """
    results = list(results)
    if not results:
        raise ConfigError("no finished runs to fit; train a ladder first (Sweep, or `scaling-lab sweep "
                          "--tokens-per-param 20`)")
    check_one_family([r.config for r in results])
    if isinstance(holdout, bool) or not isinstance(holdout, int) or holdout < 0:
        raise ConfigError(f"holdout must be a whole number >= 0, got {holdout!r}")
    all_sizes = sizes(results)
    if len(all_sizes) - holdout < MIN_SIZES:
        raise ConfigError(f"a law E + A·N^-α needs at least {MIN_SIZES} model sizes to fit; this family has "
                          f"{len(all_sizes)} finished size(s) and {holdout} are held out. Train more sizes"
                          + (" or hold out fewer" if holdout else ""))
    fit_points, held = all_sizes[:len(all_sizes) - holdout], all_sizes[len(all_sizes) - holdout:]
    law, boot, source = _predictions(fit_points, n_boot=bootstrap, seed=seed, confidence=confidence)
    samples = {k: boot.samples[k] for k in ("E", "A", "alpha")}
    intervals = {k: boot.intervals[k] for k in ("E", "A", "alpha")}
    if len(fit_points) <= MIN_SIZES and all(len(z.losses) == 1 for z in fit_points):
        # one seed at each of MIN_SIZES sizes: every resample holds all the sizes (at least MIN_SIZES
        # distinct ones are drawn) and so the same points; resampling cannot vary the fit, and the
        # interval is unknown, not zero
        samples = {k: np.array([]) for k in samples}
        intervals = {k: F.Interval(v.estimate, math.nan, math.nan) for k, v in intervals.items()}
        source = "nothing (one seed at each of the fewest sizes a law needs)"
    cfg = results[0].config
    partial = FamilyLaw(family=family_key(cfg), label=family_label(cfg), fit=law,
                        intervals=intervals, samples=samples,
                        confidence=confidence, interval_from=source, fitted=tuple(fit_points), held_out=(),
                        warnings=(), tokens_per_param=cfg.tokens_per_param)
    preds = []
    for z in held:
        p = partial.predict(z.N)
        preds.append(Prediction(N=z.N, predicted=p.predicted, low=p.low, high=p.high, width=z.width, depth=z.depth,
                                D=z.D, measured=z.mean, sd=z.sd, seeds=len(z.losses)))
    law_out = FamilyLaw(**{**vars(partial), "held_out": tuple(preds)})
    warnings = judge(law_out, all_sizes)
    return FamilyLaw(**{**vars(law_out), "warnings": tuple(warnings)})


def judge(law: FamilyLaw, all_sizes: list[Size]) -> list[str]:
    """The reasons to doubt `law`, in words (see the module doc)."""
    out = []
    fitted = list(law.fitted)
    Ns = np.array([z.N for z in fitted], float)
    span = Ns.max() / Ns.min()
    if span < MIN_SPAN:
        out.append(f"The fitted sizes span only {span:.1f}x in parameters (N {Ns.min():,.0f} to {Ns.max():,.0f}); "
                   f"a law needs at least {MIN_SPAN:g}x to pin its exponent: add smaller or larger models.")
    target = max([p.N for p in law.held_out] or [2 * Ns.max()])
    if span >= MIN_SPAN and target / Ns.max() > span:
        out.append(f"The prediction at N={target:,.0f} reaches {target / Ns.max():.1f}x beyond the largest fitted size, "
                   f"farther than the fitted sizes span ({span:.1f}x): add sizes between, or larger fitted ones.")
    if len(fitted) > MIN_SIZES:
        try:
            without = F.fit_power_law(*_points(fitted[1:]), variable="N")
            shift = (float(without.predict(target)) - float(law.fit.predict(target))) / float(law.fit.predict(target))
            if abs(shift) > SMALL_END_SHIFT:
                out.append(f"Fitted without the smallest size, the prediction at N={target:,.0f} moves by "
                           f"{shift:+.1%}: the smallest model is not yet on the power law, or the law rests on too "
                           "few sizes to pin its three parameters; add sizes or seeds (or leave the smallest out).")
        except ValueError:
            pass
    min_loss = min(z.mean for z in fitted)
    E = law.fit.E
    if E < E_LOW * min_loss:
        out.append(f"The irreducible loss E is pinned near 0 ({E:.3g} nats): the points do not show the curve "
                   "flattening, so E and α trade off and a long extrapolation is uncertain.")
    elif E > 0.97 * min_loss:
        out.append(f"The irreducible loss E = {E:.3f} sits just under the smallest measured loss ({min_loss:.3f}): "
                   "the law claims the largest fitted model is almost at the floor; more sizes are needed.")
    for p in law.held_out or [law.predict(target)]:
        if not math.isfinite(p.high):
            out.append(f"The prediction at N={p.N:,.0f} has no interval: with one seed at each of {len(fitted)} "
                       "sizes, resampling cannot vary the fit; train more seeds per size or more sizes.")
            break
        half = (p.high - p.low) / 2 / p.predicted
        if half > TARGET_ERROR:
            out.append(f"The {law.confidence:.0%} interval of the prediction at N={p.N:,.0f} is ±{half:.1%} "
                       f"(from resampling {law.interval_from}): wider than the ±{TARGET_ERROR:.0%} a useful "
                       "prediction needs; train more seeds per size or more sizes.")
            break
    repeated = [z for z in all_sizes if z.epochs > MAX_EPOCHS]
    if repeated:
        z = max(repeated, key=lambda z: z.epochs)
        out.append(f"{len(repeated)} size(s) repeat their data over {MAX_EPOCHS:g} times (N={z.N:,}: "
                   f"{z.epochs:.1f} epochs): their loss is limited by data, not size; use a bigger corpus "
                   "(the default stdlib) or fewer tokens per parameter.")
    if not law.tokens_per_param:
        ratios = [z.D / z.N for z in all_sizes]
        if max(ratios) / min(ratios) > 1.5 and min(ratios) < MIN_TOKENS_PER_PARAM:
            z = all_sizes[int(np.argmin(ratios))]
            out.append(f"The runs were not trained on a fixed number of tokens per parameter: the model with "
                       f"N={z.N:,} saw {z.D / z.N:.1f} tokens per parameter. Where data is that short the loss "
                       "measures the data limit, not the model size; train a ladder (D = 20 x N) for a law in N.")
    return out


def family_results(results: Sequence) -> dict[str, list]:
    """Finished runs (RunResult) by family key, largest family first."""
    out: dict[str, list] = {}
    for r in results:
        out.setdefault(family_key(r.config), []).append(r)
    return dict(sorted(out.items(), key=lambda kv: -len(kv[1])))
