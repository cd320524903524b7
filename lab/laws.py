"""A family's law: fitted on its smaller models, checked on its larger ones, and judged.

`fit_family(results, holdout=2)` takes the finished runs of one family (`lab.family`), fits
L(N) = E + A·N^-α to all but its `holdout` largest sizes, predicts the held-out sizes with an
interval, compares each with its measurement, and says in words when the law should not be
trusted (`FamilyLaw.warnings`). N is all parameters (`params_total`), the N of the ladder's
D = R·N.

The statistics, chosen by simulating ladders from a known law at the lab's own sizes, seeds
and seed spreads (tests/test_law_calibration.py; the figures in the README):

- **Noise from the seeds.** A seed's log loss scatters about its size's mean by σ(N), and on
  the default ladder σ falls with N (1.2 % at width 40, 0.2-0.3 % at widths 96-136), so σ²(N)
  is fitted log-linear in log N to the sizes' seed variances (weighted by their degrees of
  freedom, corrected for the bias of log s²); pooled when fewer than three sizes have two
  seeds; from the residuals when no size has.
- **Least squares in log L, each seed weighted by 1/σ²(N).** Huber with δ = 1e-3 (Hoffmann et
  al.'s choice for thousands of runs) is close to least absolute deviation at the ladder's
  noise, passing exactly through some points; unweighted seeds let the noisy small sizes,
  with more seeds, outweigh the precise large ones.
- **Intervals from the fit's curvature**: the covariance (JᵀWJ)⁻¹ scaled by the reduced χ²
  when the points scatter more than their seeds say, a Student t quantile, the interval taken
  in log L. Simulated (2,000 ladders), 95 % intervals cover 93 % of held-out truths at
  1.04-1.07x the real 95 % error; the earlier two-level bootstrap covered 100 % at 2.7x, so nothing could be called
  trusted.
- **Checks with thresholds set by simulation**, each raising its warning for a correct law in
  under 5 % of ladders (1.8-4.1 % measured): the smallest fitted size predicted by the law of
  the others, the largest likewise (leave-largest-out), held-out sizes against their
  prediction, and the scatter of the sizes' means about the law against their seeds' spread.
  Design checks (span, reach, repeated data, tokens per parameter, E pinned at 0) say what the
  data cannot show.

Pure: results in, a frozen result out (numpy, scipy.stats and `lab.fit`).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lab import fit as F
from lab.config import ConfigError
from lab.family import check_one_family, family_key, family_label
from lab.i18n import N_, _

MIN_SIZES = 4              # three parameters (E, A, α) and one degree of freedom to judge them
MIN_SPAN = 3.0             # fitted sizes should span at least this factor in N, and a prediction reach no
                           # farther beyond the largest fitted size than the fitted sizes span
MAX_EPOCHS = 4.0           # past 4 epochs repeated data is worth much less (Muennighoff et al. 2023)
MIN_TOKENS_PER_PARAM = 10  # a fixed-D sweep whose largest model sees fewer is limited by data, not size
TARGET_ERROR = 0.025       # an interval wider than ±2.5 % cannot tell a good prediction from a bad one; at
                           # ±2 % a correct law on the default ladder raised it for width 136 in 5 % of
                           # simulated ladders, at ±2.5 % in 1-2 % (tests/test_law_calibration.py)
E_LOW = 0.05               # E below 5 % of the smallest loss: pinned at zero
CONFIDENCE = 0.95          # of the intervals shown
CHECK_LEVEL = 0.99         # a check fires past its 99 % point (with the noise itself estimated, 1.8-4.1 %
                           # of correct laws raise each check: tests/test_law_calibration.py)
MIN_NOISE_DOF = 4          # the seeds' spread is used from 4 degrees of freedom on (e.g. 4 sizes of 2 seeds)
LS_DELTA = 1.0             # Huber δ far above log-loss residuals (~1e-2): least squares
DRAWS = 2000               # parameter draws for the plotted band and the parameters' intervals
ALARM = N_("(a correct law raises this in under 5 % of simulated ladders like the default one)")


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


@dataclass(frozen=True)
class Noise:
    """σ²(N), the variance of one seed's log loss at size N: log σ² = a + b·log N."""
    a: float
    b: float
    dof: int                # degrees of freedom of the seeds' variances (0: from the residuals)
    source: str             # in words: where σ came from

    def var(self, N) -> np.ndarray:
        return np.exp(self.a + self.b * np.log(np.asarray(N, float)))

    def sd(self, N) -> float:
        return float(np.sqrt(self.var(N)))


@dataclass(frozen=True, eq=False)
class FamilyLaw:
    """L(N) = E + A·N^-α of one family, with held-out checks and the reasons to doubt it."""
    family: str
    label: str
    fit: F.PowerLawFit
    cov: np.ndarray                # covariance of (log E, log A, α), scaled (see the module doc)
    dof: int                       # points − 3
    quantile: float                # the Student t quantile of the intervals
    scatter: float                 # reduced χ² of the points about the law (1: as the seeds say)
    noise: Noise
    intervals: dict                # E, A, alpha -> lab.fit.Interval
    samples: dict                  # parameter draws of E, A, alpha (the plotted band)
    confidence: float
    interval_from: str             # in words: what the intervals rest on
    fitted: tuple                  # Size, smallest first
    held_out: tuple                # Prediction per held-out size, smallest first
    warnings: tuple                # sentences; empty when nothing speaks against the law
    tokens_per_param: float        # the family's R (0: tokens as given)

    @property
    def trusted(self) -> bool:
        return not self.warnings

    def equation(self) -> str:
        return self.fit.equation()

    def se_log(self, N) -> np.ndarray:
        """Standard error of log L̂(N) (the law's value, not a new measurement's)."""
        return _se_log(self.fit, self.cov, N)

    def band(self, N) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) of the law's `confidence` interval at each N."""
        N = np.atleast_1d(np.asarray(N, float))
        mid, half = np.log(self.fit.predict(N)), self.quantile * self.se_log(N)
        return np.exp(mid - half), np.exp(mid + half)

    def predict(self, N) -> Prediction:
        """The law's loss at `N` parameters with its interval."""
        N = float(N)
        if not (math.isfinite(N) and N > 0):
            raise ConfigError(_("a model size must be a positive number of parameters, got {value}").format(
                value=repr(N)))
        (low,), (high,) = self.band(N)
        return Prediction(N=N, predicted=float(self.fit.predict(N)), low=float(low), high=float(high))

    def surprise(self, N, measured_mean: float, seeds: int) -> float:
        """How far a measured mean of `seeds` seeds at N sits from the law, in standard errors
        (the law's and the measurement's own noise together)."""
        return _surprise(self.fit, self.cov, self.noise, N, measured_mean, seeds)

    def footing(self, N, D=None) -> list[str]:
        """What a prediction at N parameters (trained on D tokens) rests on, in words: how far it
        reaches beyond the fitted sizes against their span, and how many epochs of the family's
        corpus its D needs (the law was fitted on runs that saw each token at most a few times)."""
        Ns = [z.N for z in self.fitted]
        reach, span = float(N) / max(Ns), max(Ns) / min(Ns)
        n = f"{float(N):,.0f}"
        if reach <= 1:
            out = [_("N = {n} lies within the fitted sizes (an interpolation)").format(n=n)]
        elif reach > span:
            out = [_("N = {n} is {reach}x the largest fitted size; the fitted sizes span {span}x, so the law is asked "
                     "farther than it was seen: treat the number as a guess").format(n=n, reach=f"{reach:.1f}",
                                                                                     span=f"{span:.1f}")]
        else:
            out = [_("N = {n} is {reach}x the largest fitted size; the fitted sizes span {span}x").format(
                n=n, reach=f"{reach:.1f}", span=f"{span:.1f}")]
        per_token = [z.epochs / z.D for z in self.fitted if z.D and math.isfinite(z.epochs) and z.epochs > 0]
        if D and per_token:
            epochs = float(D) * float(np.median(per_token))
            seen = max(z.epochs for z in self.fitted)
            words = {"d": f"{float(D):,.0f}", "epochs": f"{epochs:.1f}", "seen": f"{seen:.1f}",
                     "most": f"{MAX_EPOCHS:g}"}
            if epochs > MAX_EPOCHS:
                out.append(_("D = {d} tokens is {epochs} epochs of this family's corpus (the fitted runs saw at most "
                             "{seen}); past {most} epochs repeated data is worth much less and the law, fitted on "
                             "fresh data, predicts too low").format(**words))
            else:
                out.append(_("D = {d} tokens is {epochs} epochs of this family's corpus (the fitted runs saw at most "
                             "{seen})").format(**words))
        return out

    @property
    def max_abs_rel_error(self) -> float:
        errs = [abs(p.rel_error) for p in self.held_out]
        return float(max(errs)) if errs else math.nan

    def to_dict(self) -> dict:
        f = self.fit
        return {"family": self.family, "label": self.label, "equation": self.equation(),
                "fit": {"E": f.E, "A": f.A, "alpha": f.alpha, "converged": f.converged, "n_points": f.n_points},
                "intervals": {k: vars(v) for k, v in self.intervals.items()}, "confidence": self.confidence,
                "interval_from": self.interval_from, "noise": {"source": self.noise.source, "log_var": self.noise.a,
                                                               "slope": self.noise.b, "dof": self.noise.dof},
                "scatter": self.scatter, "tokens_per_param": self.tokens_per_param,
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
            raise ConfigError(_("the runs of width {width}, depth {depth} were trained on different numbers of tokens "
                                "({tokens}); a law in N alone needs one D per size: fit Chinchilla's L(N, D) to them, "
                                "or train a ladder (D = 20 x N)").format(
                width=w, depth=d, tokens=", ".join(sorted({f"{r.tokens:,}" for r in rs}))))
        out.append(Size(width=w, depth=d, N=n, D=max(r.tokens for r in rs), losses=tuple(r.eval_loss for r in rs),
                        epochs=max(r.epochs for r in rs)))
    return out


def sizes_from_table(N, loss, *, seed=None, tokens=None, epochs=None) -> list[Size]:
    """A table's rows (one run each: parameters, final loss, and optionally its seed, tokens and
    epochs) grouped by N into sizes, smallest first: what `scaling-lab fit FILE.csv --holdout K`
    fits. Rows of one N are its seeds.

    Raises:
        ConfigError: lengths that differ, N or loss not positive and finite, two rows of one N and
            one seed, or one N trained on different numbers of tokens.
    """
    N, loss = np.asarray(N, float), np.asarray(loss, float)
    cols = {"seed": seed, "tokens": tokens, "epochs": epochs}
    cols = {k: np.asarray(v, float) for k, v in cols.items() if v is not None}
    for name, col in {"params": N, "loss": loss, **cols}.items():
        if col.shape != N.shape:
            raise ConfigError(f"the {name} column has {col.size} values for {N.size} rows; give one per row")
        if name in cols and not (np.isfinite(col).all() and (col >= 0).all()):
            i = int(np.flatnonzero(~(np.isfinite(col) & (col >= 0)))[0])
            raise ConfigError(f"row {i + 1}: {name} {col[i]!r} is not a number >= 0; fix the row or drop the column")
    bad = ~(np.isfinite(N) & (N > 0) & np.isfinite(loss) & (loss > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConfigError(f"row {i + 1}: params {N[i]!r} and loss {loss[i]!r} must be positive numbers; fix or drop "
                          "the row (a diverged run has no loss to fit)")
    out = []
    for n in np.unique(N):
        rows = np.flatnonzero(N == n)
        if "seed" in cols and len(set(cols["seed"][rows])) < len(rows):
            raise ConfigError(f"params {n:,.0f}: two rows have the same seed; keep one row per run")
        D = cols["tokens"][rows] if "tokens" in cols else np.zeros(len(rows))
        if len(set(D)) > 1:
            raise ConfigError(f"params {n:,.0f}: rows trained on different tokens ({', '.join(f'{d:,.0f}' for d in sorted(set(D)))}); "
                              "a law in N alone needs one D per size")
        ep = cols["epochs"][rows] if "epochs" in cols else np.zeros(len(rows))
        out.append(Size(width=0, depth=0, N=int(n), D=int(D[0]), losses=tuple(map(float, loss[rows])),
                        epochs=float(np.max(ep))))
    return out


def _points(fit_points: list[Size]) -> tuple[np.ndarray, np.ndarray]:
    """(N, loss) with every seed of every size a point."""
    return (np.array([z.N for z in fit_points for _loss in z.losses], float),
            np.array([l for z in fit_points for l in z.losses], float))


def _gradient(law: F.PowerLawFit, N: np.ndarray) -> np.ndarray:
    """d log L / d(log E, log A, α) at each N."""
    term = law.A * N ** -law.alpha
    L = law.E + term
    return np.stack([law.E / L, term / L, -term * np.log(N) / L], 1)


def _se_log(law: F.PowerLawFit, cov: np.ndarray, N) -> np.ndarray:
    g = _gradient(law, np.atleast_1d(np.asarray(N, float)))
    return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", g, cov, g), 0.0))


def _surprise(law: F.PowerLawFit, cov: np.ndarray, noise: Noise, N, measured_mean: float, seeds: int) -> float:
    se = math.sqrt(float(_se_log(law, cov, N)[0]) ** 2 + float(noise.var(N)) / max(seeds, 1))
    return (math.log(measured_mean) - math.log(float(law.predict(N)))) / se


def _log_chi2_bias(dof: np.ndarray) -> np.ndarray:
    """E[log(χ²_k / k)] = ψ(k/2) + log(2/k): how far log s² falls below log σ² on average."""
    from scipy.special import digamma
    return digamma(dof / 2) + np.log(2 / dof)


def noise(fit_points: list[Size]) -> Noise | None:
    """σ²(N) from the seeds' spreads (see the module doc); None when the seeds give fewer than
    MIN_NOISE_DOF degrees of freedom (then the points' scatter about the law is the noise)."""
    seeded = [z for z in fit_points if len(z.losses) > 1]
    if sum(len(z.losses) - 1 for z in seeded) < MIN_NOISE_DOF:
        return None                             # a spread from one or two pairs of seeds says too little
    dof = np.array([len(z.losses) - 1 for z in seeded], float)
    s2 = np.array([np.var(np.log(z.losses), ddof=1) for z in seeded])
    s2 = np.maximum(s2, 1e-12)                  # identical seeds (a test's copies): no information, not -inf
    if len(seeded) < 3:
        return Noise(a=float(np.log(np.sum(dof * s2) / dof.sum())), b=0.0, dof=int(dof.sum()),
                     source=_("the seeds' spread, pooled over {n} size(s)").format(n=len(seeded)))
    y = np.log(s2) - _log_chi2_bias(dof)
    X = np.stack([np.ones(len(seeded)), np.log([z.N for z in seeded])], 1)
    a, b = np.linalg.solve(X.T @ (X * dof[:, None]), X.T @ (dof * y))
    return Noise(a=float(a), b=float(b), dof=int(dof.sum()),
                 source=_("the seeds' spread at {n} sizes (σ ∝ N^{exponent})").format(n=len(seeded),
                                                                                      exponent=f"{b / 2:.2f}"))


def _fit_law(fit_points: list[Size]):
    """(law, covariance, dof, reduced χ², Noise) of L(N) on these sizes."""
    N, loss = _points(fit_points)
    nz = noise(fit_points)
    w = 1 / nz.var(N) if nz is not None else np.ones_like(N)
    law = F.fit_power_law(N, loss, variable="N", delta=LS_DELTA, weights=w / w.mean())
    r = np.log(loss) - np.log(law.predict(N))
    dof = N.size - 3
    g = _gradient(law, N)
    cov = np.linalg.pinv(g.T @ (g * w[:, None]))
    if nz is None:                              # σ from the residuals alone: (almost) one seed a size
        scatter = float(np.sum(r * r) / dof)
        cov = cov * scatter
        nz = Noise(a=math.log(max(scatter, 1e-12)), b=0.0, dof=0, source=_("the points' scatter about the law "
                                                                         "(too few seeds to measure their spread)"))
        scatter = 1.0
    else:
        scatter = float(np.sum(w * r * r) / dof)
        cov = cov * max(scatter, 1.0)
    return law, cov, dof, scatter, nz


def _draws(law: F.PowerLawFit, cov: np.ndarray, dof: int, n: int, seed: int, cap: float) -> dict:
    """Multivariate-t draws of (E, A, α) about the fit (E kept in [0, cap))."""
    rng = np.random.default_rng(seed)
    theta = np.array([math.log(max(law.E, 1e-300)), math.log(law.A), law.alpha])
    vals, vecs = np.linalg.eigh((cov + cov.T) / 2)
    root = vecs * np.sqrt(np.maximum(vals, 0.0))
    z = rng.standard_normal((n, 3)) @ root.T * np.sqrt(dof / rng.chisquare(dof, (n, 1)))
    t = theta + z
    return {"E": np.minimum(np.exp(np.minimum(t[:, 0], 50.0)), cap), "A": np.exp(np.minimum(t[:, 1], 700.0)),
            "alpha": t[:, 2]}


def fit_family(results: Sequence, *, holdout: int = 0, draws: int = DRAWS, seed: int = 0,
               confidence: float = CONFIDENCE) -> FamilyLaw:
    """Fit one family's L(N) on all but its `holdout` largest sizes and check it on those.

    Args:
        results: finished runs (RunResult) of one family; diverged ones are left out.
        holdout: how many of the largest sizes to hold out and predict.
        draws: parameter draws for the plotted band and the parameters' intervals.
        confidence: of the intervals (0.95).

    Raises:
        ConfigError: runs of several families (the message names the fields that differ), or
            fewer than MIN_SIZES sizes left to fit.
    """
    results = list(results)
    if not results:
        raise ConfigError(_("no finished runs to fit; train a ladder first (Sweep, or `scaling-lab sweep "
                            "--tokens-per-param 20`)"))
    check_one_family([r.config for r in results])
    if isinstance(holdout, bool) or not isinstance(holdout, int) or holdout < 0:
        raise ConfigError(f"holdout must be a whole number >= 0, got {holdout!r}")
    cfg = results[0].config
    return fit_sizes(sizes(results), holdout=holdout, draws=draws, seed=seed, confidence=confidence,
                     family=family_key(cfg), label=family_label(cfg), tokens_per_param=cfg.tokens_per_param)


def fit_sizes(all_sizes: Sequence[Size], *, holdout: int = 0, draws: int = DRAWS, seed: int = 0,
              confidence: float = CONFIDENCE, family: str = "", label: str = "",
              tokens_per_param: float = 0.0) -> FamilyLaw:
    """`fit_family` on sizes already grouped (smallest first): what the calibration simulates."""
    if not (isinstance(confidence, float) and 0.5 <= confidence < 1):
        raise ConfigError(f"confidence must be a number from 0.5 to below 1, got {confidence!r}; 0.95 is usual")
    all_sizes = sorted(all_sizes, key=lambda z: z.N)
    if len(all_sizes) - holdout < MIN_SIZES:
        words = {"n": MIN_SIZES, "have": len(all_sizes), "held": holdout}
        raise ConfigError(_("a law E + A·N^-α needs at least {n} model sizes to fit; this family has {have} finished "
                            "size(s) and {held} are held out. Train more sizes or hold out fewer").format(**words)
                          if holdout else
                          _("a law E + A·N^-α needs at least {n} model sizes to fit; this family has {have} finished "
                            "size(s) and {held} are held out. Train more sizes").format(**words))
    fit_points, held = all_sizes[:len(all_sizes) - holdout], all_sizes[len(all_sizes) - holdout:]
    law, cov, dof, scatter, nz = _fit_law(fit_points)
    from scipy.stats import t as student_t
    quantile = float(student_t.ppf(0.5 + confidence / 2, dof))
    samples = _draws(law, cov, dof, draws, seed, cap=min(z.mean for z in fit_points))
    q = 100 * np.array([(1 - confidence) / 2, (1 + confidence) / 2])
    intervals = {k: F.Interval(float(getattr(law, k)), *map(float, np.percentile(v, q))) for k, v in samples.items()}
    partial = FamilyLaw(family=family, label=label, fit=law, cov=cov, dof=dof,
                        quantile=quantile, scatter=scatter, noise=nz, intervals=intervals, samples=samples,
                        confidence=confidence,
                        interval_from=_("the fit's curvature and {noise}").format(noise=nz.source),
                        fitted=tuple(fit_points), held_out=(), warnings=(), tokens_per_param=tokens_per_param)
    preds = []
    for z in held:
        p = partial.predict(z.N)
        preds.append(Prediction(N=z.N, predicted=p.predicted, low=p.low, high=p.high, width=z.width, depth=z.depth,
                                D=z.D, measured=z.mean, sd=z.sd, seeds=len(z.losses)))
    law_out = FamilyLaw(**{**vars(partial), "held_out": tuple(preds)})
    return FamilyLaw(**{**vars(law_out), "warnings": tuple(judge(law_out, all_sizes))})


def _left_out(fitted: list[Size], z: Size) -> tuple[float, float] | None:
    """How surprising size `z` is to the law of the other fitted sizes: (|t| over its 99 % point,
    > 1 when the check fires; t itself); None where too few sizes remain."""
    from scipy.stats import t as student_t
    rest = [y for y in fitted if y is not z]
    if len(rest) < MIN_SIZES:
        return None
    try:
        law, cov, dof, scatter, nz = _fit_law(rest)
    except ValueError:
        return None
    t = _surprise(law, cov, nz, z.N, z.mean, len(z.losses))
    return abs(t) / float(student_t.ppf(0.5 + CHECK_LEVEL / 2, dof)), t


def judge(law: FamilyLaw, all_sizes: list[Size]) -> list[str]:
    """The reasons to doubt `law`, in words (see the module doc), in the current language."""
    from scipy.stats import chi2
    from scipy.stats import t as student_t
    out = []
    alarm = _(ALARM)
    fitted = list(law.fitted)
    Ns = np.array([z.N for z in fitted], float)
    span = Ns.max() / Ns.min()
    if span < MIN_SPAN:
        out.append(_("The fitted sizes span only {span}x in parameters (N {low} to {high}); a law needs at least "
                     "{least}x to pin its exponent: add smaller or larger models.").format(
            span=f"{span:.1f}", low=f"{Ns.min():,.0f}", high=f"{Ns.max():,.0f}", least=f"{MIN_SPAN:g}"))
    target = max([p.N for p in law.held_out] or [2 * Ns.max()])
    if span >= MIN_SPAN and target / Ns.max() > span:
        out.append(_("The prediction at N={n} reaches {reach}x beyond the largest fitted size, farther than the "
                     "fitted sizes span ({span}x): add sizes between, or larger fitted ones.").format(
            n=f"{target:,.0f}", reach=f"{target / Ns.max():.1f}", span=f"{span:.1f}"))
    small = _left_out(fitted, fitted[0])
    if small is not None and small[0] > 1:
        out.append(_("The smallest fitted size (N={n}) sits off the law of the others ({t} standard errors, past "
                     "what the noise explains): small models are not yet on the power law; leave it out or add "
                     "sizes {alarm}.").format(n=f"{fitted[0].N:,}", t=f"{small[1]:+.1f}", alarm=alarm))
    large = _left_out(fitted, fitted[-1])
    if large is not None and large[0] > 1:
        out.append(_("Left out, the largest fitted size (N={n}) is not predicted by the smaller ones within their "
                     "noise ({t} standard errors): the law bends within the fitted range, so it will bend beyond "
                     "it {alarm}.").format(n=f"{fitted[-1].N:,}", t=f"{large[1]:+.1f}", alarm=alarm))
    if law.noise.dof and law.dof > 0:
        limit = float(chi2.ppf(CHECK_LEVEL, law.dof) / law.dof)
        if law.scatter > limit:
            out.append(_("The sizes' means sit farther from the law than their seeds' spread allows (reduced χ² "
                         "{scatter}, above {limit}): the form E + A·N^-α does not describe these sizes, or their "
                         "runs differ in more than the seed; the intervals are widened by it {alarm}.").format(
                scatter=f"{law.scatter:.1f}", limit=f"{limit:.1f}", alarm=alarm))
    t99 = float(student_t.ppf(0.5 + CHECK_LEVEL / 2, law.dof))
    for p in law.held_out:
        z = law.surprise(p.N, p.measured, p.seeds)
        if abs(z) > t99:
            out.append(_("The held-out size N={n} measured {measured}, {error} from its prediction ({t} standard "
                         "errors): the law does not reach it {alarm}.").format(
                n=f"{p.N:,.0f}", measured=f"{p.measured:.4f}", error=f"{p.rel_error:+.1%}", t=f"{z:+.1f}",
                alarm=alarm))
    min_loss = min(z.mean for z in fitted)
    E = law.fit.E
    if E < E_LOW * min_loss:
        out.append(_("The irreducible loss E is pinned near 0 ({E} nats): the points do not show the curve "
                     "flattening, so E and α trade off and a long extrapolation is uncertain.").format(E=f"{E:.3g}"))
    elif E > 0.97 * min_loss:
        out.append(_("The irreducible loss E = {E} sits just under the smallest measured loss ({smallest}): the law "
                     "claims the largest fitted model is almost at the floor; more sizes are needed.").format(
            E=f"{E:.3f}", smallest=f"{min_loss:.3f}"))
    for p in law.held_out or [law.predict(target)]:
        half = (p.high - p.low) / 2 / p.predicted
        if not math.isfinite(half) or half > TARGET_ERROR:
            out.append(_("The {confidence} interval of the prediction at N={n} is ±{half} (from {source}): wider "
                         "than the ±{target} a useful prediction needs; train more seeds per size or more "
                         "sizes.").format(confidence=f"{law.confidence:.0%}", n=f"{p.N:,.0f}", half=f"{half:.1%}",
                                          source=law.interval_from, target=f"{TARGET_ERROR:.1%}"))
            break
    repeated = [z for z in all_sizes if z.epochs > MAX_EPOCHS]
    if repeated:
        z = max(repeated, key=lambda z: z.epochs)
        out.append(_("{count} size(s) repeat their data over {most} times (N={n}: {epochs} epochs): their loss is "
                     "limited by data, not size; use a bigger corpus (the default stdlib) or fewer tokens per "
                     "parameter.").format(count=len(repeated), most=f"{MAX_EPOCHS:g}", n=f"{z.N:,}",
                                          epochs=f"{z.epochs:.1f}"))
    if not law.tokens_per_param and all(z.D > 0 for z in all_sizes):     # (a table may not give tokens)
        ratios = [z.D / z.N for z in all_sizes]
        if max(ratios) / min(ratios) > 1.5 and min(ratios) < MIN_TOKENS_PER_PARAM:
            z = all_sizes[int(np.argmin(ratios))]
            out.append(_("The runs were not trained on a fixed number of tokens per parameter: the model with "
                         "N={n} saw {ratio} tokens per parameter. Where data is that short the loss measures the "
                         "data limit, not the model size; train a ladder (D = 20 x N) for a law in N.").format(
                n=f"{z.N:,}", ratio=f"{z.D / z.N:.1f}"))
    return out
