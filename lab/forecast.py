"""Forecasts of a run's final loss while it trains, from its curve so far and its family's finished runs.

The lab's alternative to a law of the whole loss curve (Tissue et al. 2024 fit
L(s) = L0 + A·S1^-α − C·S2 to the learning-rate areas; at a quarter of a cosine schedule the
annealing area S2 has barely begun, so the curve alone cannot tell C from A): runs of one family
share the schedule, so what a run still gains after a fraction t of its tokens is much the same
across the family's sizes. For every finished run j the gain is

    g_j(t) = ln L_j(final) − ln L̄_j(t),

with L̄(t) the mean training loss (in logs) over the chunks that ended in (t − w, t] of its planned
tokens, and L(final) its final validation loss. g(t) is regressed on ln N (and on ln D/N, its
square and ln N·ln D/N where the family varies D/N, as an IsoFLOP family does) across the
finished runs; the forecast of a running
run at t is L̄(t)·exp(ĝ(t)), with a Student-t prediction interval from the regression's
residuals (the finished runs' own scatter, leverage included). Checked on the default ladder: the
README ("Forecasts while a run trains") gives the errors at 25 % and 50 % of training.

Pure numpy: the app's pages (no JAX) and the command line's progress line both use it.
"""

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from lab.i18n import _

__all__ = ["Forecast", "Forecaster", "from_store", "level", "MIN_RUNS", "WINDOW"]

WINDOW = 0.05       # the training loss is averaged over chunks that ended in the last 5 % of the tokens
MIN_RUNS = 3        # finished runs of the family needed for a forecast
MIN_FRACTION = 0.1  # before 10 % of the tokens the gain still varies with the warm-up: no forecast


@dataclass(frozen=True)
class Forecast:
    """The final loss a running run is heading for."""
    loss: float          # forecast final validation loss (nats/token)
    low: float           # prediction interval
    high: float
    fraction: float      # the share of the planned tokens trained when it was made
    runs: int            # finished runs it was learnt from
    confidence: float = 0.9
    beyond: bool = False  # the run's size lies outside the sizes it was learnt from

    def words(self) -> str:
        """The forecast in words, in the current language (the live plot's hover text)."""
        text = _("forecast final loss {loss} ({confidence}: {low} to {high}; from {runs} finished runs, at "
                 "{fraction} of the tokens)").format(loss=f"{self.loss:.3f}", confidence=f"{self.confidence:.0%}",
                                                     low=f"{self.low:.3f}", high=f"{self.high:.3f}", runs=self.runs,
                                                     fraction=f"{self.fraction:.0%}")
        if self.beyond:
            text += _("; this size lies beyond those it learnt from, where on the default ladder it missed by 8 to "
                      "15 %, outside its interval")
        return text


def level(points: Sequence[Mapping], tokens: float, t: float, window: float = WINDOW) -> float | None:
    """exp(mean ln train loss) over the curve points whose tokens_seen / tokens lies in (t − window, t];
    None when there is none (or the losses are not finite)."""
    vals = [math.log(p["train/loss"]) for p in points
            if p.get("train/loss") and math.isfinite(p["train/loss"]) and p["train/loss"] > 0
            and t - window < p.get("tokens_seen", 0) / tokens <= t + 1e-9]
    return math.exp(sum(vals) / len(vals)) if vals else None


@dataclass(frozen=True)
class _Run:
    N: float
    D: float
    final: float
    points: tuple


class Forecaster:
    """Learns g(t) from a family's finished runs; `forecast` applies it to a running run."""

    def __init__(self, runs: Iterable[tuple[float, float, float, Sequence[Mapping]]], *, confidence: float = 0.9,
                 window: float = WINDOW):
        """runs: (N = all parameters, D = planned tokens, final validation loss, curve points) per
        finished run of the family (points: dicts with tokens_seen and train/loss)."""
        self.runs = [_Run(float(n), float(d), float(f), tuple(p)) for n, d, f, p in runs
                     if n > 0 and d > 0 and f and math.isfinite(f) and f > 0 and p]
        self.confidence, self.window = confidence, window

    def why_not(self, fraction: float) -> str:
        """'' when a forecast can be made at this fraction, else the reason in words."""
        if len(self.runs) < MIN_RUNS:
            return _("a forecast needs {n} finished runs of this family to learn from; it has {have}").format(
                n=MIN_RUNS, have=len(self.runs))
        if fraction < MIN_FRACTION:
            return _("no forecast before {fraction} of the tokens (the warm-up still shapes the curve)").format(
                fraction=f"{MIN_FRACTION:.0%}")
        if fraction >= 1:
            return _("the run has finished")
        return ""

    def forecast(self, N: float, D: float, points: Sequence[Mapping], fraction: float | None = None) -> Forecast | None:
        """The final loss of a run of N parameters planned for D tokens, from its curve points so
        far (at `fraction` of D, default its last point's). None when `why_not` has a reason or
        too few finished runs reach that fraction."""
        if not points:
            return None
        t = fraction if fraction is not None else max(p.get("tokens_seen", 0) for p in points) / D
        if self.why_not(t):
            return None
        now = level(points, D, t, self.window)
        if now is None:
            return None
        rows = []
        for r in self.runs:
            past = level(r.points, r.D, t, self.window)
            if past is not None:
                rows.append((math.log(r.N), math.log(r.D / r.N), math.log(r.final) - math.log(past)))
        if len(rows) < MIN_RUNS:
            return None
        a = np.array(rows)
        X, x0 = _design(a[:, 0], a[:, 1]), _design(np.array([math.log(N)]), np.array([math.log(D / N)]))[0]
        mask = _terms(a[:, 0], a[:, 1])
        X, x0 = X[:, mask], x0[mask]
        coef, *_rest = np.linalg.lstsq(X, a[:, 2], rcond=None)
        dof = len(a) - X.shape[1]
        resid = a[:, 2] - X @ coef
        gain = float(x0 @ coef)
        if dof > 0:
            from scipy.stats import t as student
            s = math.sqrt(float(resid @ resid) / dof)
            lev = float(x0 @ np.linalg.pinv(X.T @ X) @ x0)
            half = float(student.ppf((1 + self.confidence) / 2, dof)) * s * math.sqrt(1 + lev)
        else:
            half = math.inf
        beyond = not a[:, 0].min() - 1e-9 <= math.log(N) <= a[:, 0].max() + 1e-9
        return Forecast(loss=now * math.exp(gain), low=now * math.exp(gain - half), high=now * math.exp(gain + half),
                        fraction=t, runs=len(a), confidence=self.confidence, beyond=beyond)


def _design(lnN: np.ndarray, lnR: np.ndarray) -> np.ndarray:
    """The gain's terms: 1, ln N, ln R, (ln R)², ln N·ln R, (ln N)², with R = D/N."""
    return np.column_stack([np.ones_like(lnN), lnN, lnR, lnR ** 2, lnN * lnR, lnN ** 2])


QUADRATIC_RUNS = 12   # the curved terms in ln R only with this many finished runs


def _terms(lnN: np.ndarray, lnR: np.ndarray) -> np.ndarray:
    """Which terms of `_design` to fit: ln N and ln R where they vary; where ln R varies over 12 or
    more runs also its square and the interaction (an IsoFLOP family's R spans 7 to 800: measured,
    the gain at 25 % is curved in ln R, and the linear form missed by 3.8 % where this misses by
    1.2 %); with 6 or more runs (ln N)² (on the default ladder the gain at 25 % peaks mid-ladder,
    at width 80: the straight line missed by 3.7 %, this by 0.6 %); then terms dropped from the end
    until 2 degrees of freedom are left."""
    n, vary_n, vary_r = lnN.size, np.ptp(lnN) > 1e-9, np.ptp(lnR) > 1e-9
    mask = np.array([True, vary_n, vary_r, vary_r and n >= QUADRATIC_RUNS, vary_r and vary_n and n >= QUADRATIC_RUNS,
                     vary_n and n >= 6])
    for k in (5, 4, 3, 2, 1):
        if mask.sum() > n - 2 and k > 0:
            mask[k] = False
    return mask


def from_store(store, config) -> Forecaster:
    """A Forecaster learnt from the store's finished (done) runs of `config`'s family, the run itself left out."""
    from lab.family import family_key
    key, runs = family_key(config), []
    for rec in store.records():
        if rec.status == "done" and rec.run_id != config.run_id and family_key(rec.config) == key:
            full = store.record(rec.run_id, curve=True)
            if full is not None and full.result is not None:
                runs.append((full.result.params_total, full.config.tokens_trained, full.result.eval_loss,
                             full.result.curve))
    return Forecaster(runs)
