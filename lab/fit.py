"""Scaling-law fits: Kaplan power laws and the three Chinchilla approaches, with uncertainty.

    L(x)    = E + A·x^-α               Kaplan et al. 2020, x = parameters N, tokens D or compute C
    L(N, D) = E + A·N^-α + B·D^-β      Hoffmann et al. 2022 ("Chinchilla"), approach 3
    N_opt(C) ∝ C^a, D_opt(C) ∝ C^b     approaches 1 (envelope), 2 (IsoFLOP), 3 (closed form), C = 6ND

Arrays in, frozen results out; numpy and scipy only.

Why one module longer than the house ~350 lines: every parametric fit here (power laws,
Chinchilla, their bootstrap and holdout checks) shares one objective -- Huber loss on
log-loss residuals in log-sum-exp form, with its analytic gradient and Hessian -- one
batched Newton solver that runs many starts or many bootstrap resamples at once, and one
input validator. Split apart, the objective's derivatives would sit away from the only code
that relies on them. Sections, in order: validation, objective, solver, power law,
Chinchilla, allocation, envelope, bootstrap, holdout. Approach 2 (IsoFLOP profiles) and the
least-squares approach 3 by variable projection live in `lab.allocation`, which builds on these.
"""

import itertools
import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from scipy.optimize import minimize

__all__ = ["PowerLawFit", "ChinchillaFit", "Allocation", "EnvelopeFit", "Interval",
           "BootstrapResult", "HoldoutRow", "HoldoutCheck", "fit_power_law", "fit_chinchilla", "compute_optimal",
           "predict_loss", "fit_envelope", "bootstrap", "holdout_check", "CHINCHILLA_GRID", "LAWS"]
# The start grid of Hoffmann et al. 2022, appendix D.2, as replicated by Besiroglu et al.
# 2024: 5·5·5·6·6 = 4,500 starts. Only a few dozen of the best are refined (see _fit).
CHINCHILLA_GRID = {
    "alpha": (0.0, 0.5, 1.0, 1.5, 2.0),
    "beta": (0.0, 0.5, 1.0, 1.5, 2.0),
    "e": (-1.0, -0.5, 0.0, 0.5, 1.0),          # log E
    "a": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),   # log A
    "b": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),   # log B
}
DELTA = 1e-3      # Huber threshold on log-loss residuals (Hoffmann et al. 2022)
GTOL = 1e-8       # converged when max|gradient| <= GTOL·δ·n (standardised coordinates)
N_REFINE = 64     # grid starts refined by Newton; the global optimum is within the best ~10 on real data
LAWS = ("chinchilla", "kaplan-n", "kaplan-d", "kaplan-c")


# ----------------------------------------------------------------------------- validation

def _column(name: str, values, n: int | None = None, first: str = "") -> np.ndarray:
    """`values` as a 1-D float array of finite, positive numbers, or a ValueError that says how to fix it."""
    try:
        a = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers, got {type(values).__name__}; "
                         "pass a list or array of floats") from None
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one value per run), got shape {a.shape}")
    if n is not None and a.size != n:
        raise ValueError(f"{name} has {a.size} values but {first} has {n}; pass one value per run to each")
    bad = np.flatnonzero(~np.isfinite(a))
    if bad.size:
        raise ValueError(f"{name}[{bad[0]}] = {a[bad[0]]} is not finite ({bad.size} such value(s)); "
                         "drop those runs first (a diverged run has a NaN or infinite loss)")
    bad = np.flatnonzero(a <= 0)
    if bad.size:
        raise ValueError(f"{name}[{bad[0]}] = {a[bad[0]]:g} is not positive ({bad.size} such value(s)); "
                         f"{name} enters a logarithm, so it must be > 0: check the column and its units")
    return a


def _inputs(need: int, what: str, **columns) -> list[np.ndarray]:
    """Validate same-length positive columns; the last one is the loss. Needs `need` points."""
    names = list(columns)
    first = _column(names[0], columns[names[0]])
    out = [first] + [_column(k, columns[k], first.size, names[0]) for k in names[1:]]
    if first.size < need:
        raise ValueError(f"{what} needs at least {need} points, got {first.size}; train more runs "
                         "(e.g. a sweep over model sizes) before fitting")
    loss = out[-1]
    if np.ptp(loss) == 0:
        raise ValueError(f"{names[-1]} is constant ({loss[0]:g} for all {loss.size} points); a scaling law needs "
                         "losses that change with scale: check that the loss column is the right one")
    for name, a in zip(names[:-1], out[:-1]):
        if np.unique(a).size < 2:
            raise ValueError(f"{name} takes a single value ({a[0]:g}); {what} needs at least 2 distinct values "
                             f"of {name} to estimate its exponent")
    return out


def _positive(name: str, values) -> np.ndarray:
    """Any-shaped positive finite array for predictions and budgets."""
    a = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"{name} must be positive and finite, got {values!r}")
    return a


def _fmt(v: float) -> str:
    return f"{v:.4g}"


# ----------------------------------------------------------------------------- objective

class _Objective:
    """f(θ) = Σ_i w_i·Huber_δ(r_i),  r_i = LSE(z_i1, ..., z_iT) − log L_i  (Hoffmann et al. 2022, eq. 10).

    Power term k: z_ik = log A_k − α_k·log X_ik; irreducible term: z_iE = e = log E. Parameters
    are held in standardised coordinates, z_ik = c_k − s_k·u_ik with u_k = (log X_k − μ_k)/σ_k,
    so c_k = log A_k − α_k·μ_k and s_k = α_k·σ_k: this removes the near-collinearity of
    log A and α (log N spans ~20 ± 2) that slows first-order methods. θ = (c_1, s_1, ..., e).
    Huber'(r) = clip(r, −δ, δ); Huber''(r) = 1[|r| <= δ].
    """

    def __init__(self, log_x: np.ndarray, log_loss: np.ndarray, *, irreducible: bool, delta: float):
        if not (isinstance(delta, (int, float)) and math.isfinite(delta) and delta > 0):
            raise ValueError(f"delta must be a positive number, got {delta!r}; Hoffmann et al. use 1e-3")
        log_x = np.atleast_2d(log_x)
        self.K, self.n = log_x.shape
        self.irreducible, self.delta, self.y = irreducible, float(delta), log_loss
        self.mu, self.sd = log_x.mean(1), log_x.std(1)
        self.u = (log_x - self.mu[:, None]) / self.sd[:, None]
        self.T, self.P = self.K + irreducible, 2 * self.K + irreducible
        term = [k for k in range(self.K) for _ in (0, 1)] + [self.K] * irreducible   # which z each θ_p moves
        dz = [v for k in range(self.K) for v in (np.ones(self.n), -self.u[k])] + [np.ones(self.n)] * irreducible
        groups: dict = {}
        for p, q in itertools.combinations_with_replacement(range(self.P), 2):
            groups.setdefault(tuple(sorted((term[p], term[q]))), []).append((p, q))
        # Hessian blocks: H_pq = Σ_i M_i[t(p), t(q)]·dz_p,i·dz_q,i, one matrix product per (t, t') pair.
        self._blocks = [(t, s, np.array([p for p, _ in pq]), np.array([q for _, q in pq]),
                         np.stack([dz[p] * dz[q] for p, q in pq], 1)) for (t, s), pq in groups.items()]
        self._term, self._dz = np.array(term), np.array(dz)

    def internal(self, log_coef, exponent, log_E=None) -> np.ndarray:
        """θ rows from natural (log A_k, α_k[, log E]); arrays of shape (B, K) and (B,)."""
        log_coef, exponent = np.atleast_2d(log_coef), np.atleast_2d(exponent)
        cols = []
        for k in range(self.K):
            cols += [log_coef[:, k] - exponent[:, k] * self.mu[k], exponent[:, k] * self.sd[k]]
        if self.irreducible:
            cols.append(np.broadcast_to(np.asarray(log_E, float).ravel(), cols[0].shape))
        return np.stack(cols, 1)

    def natural(self, theta: np.ndarray):
        """(log A (B, K), α (B, K), log E (B,) or None) from θ rows."""
        theta = np.atleast_2d(theta)
        exponent = theta[:, 1:2 * self.K:2] / self.sd
        return theta[:, 0:2 * self.K:2] + exponent * self.mu, exponent, theta[:, -1] if self.irreducible else None

    def gtol(self, weights) -> np.ndarray | float:
        total = self.n if weights is None else np.sum(weights, axis=-1)
        return GTOL * self.delta * total

    def __call__(self, theta: np.ndarray, weights=None, order: int = 0, curvature: str = "exact"):
        """f (B,), and with order 1 the gradient (B, P), with order 2 the Hessian (B, P, P).

        curvature="majorised" replaces Huber'' by min(1, δ/|r|), the curvature of the quadratic
        that touches Huber at r from above (the IRLS weight): a positive-definite stand-in far
        from the optimum, where almost every residual sits on Huber's linear part.
        """
        d, B = self.delta, theta.shape[0]
        with np.errstate(all="ignore"):   # a rejected trial step may overflow; f = nan rejects it
            z = np.empty((B, self.T, self.n))
            for k in range(self.K):
                z[:, k] = theta[:, 2 * k, None] - theta[:, 2 * k + 1, None] * self.u[k]
            if self.irreducible:
                z[:, -1] = theta[:, -1, None]
            top = z.max(axis=1, keepdims=True)
            ez = np.exp(z - top)
            total = ez.sum(axis=1, keepdims=True)
            r = (top + np.log(total))[:, 0] - self.y
            ar = np.abs(r)
            h = np.where(ar <= d, 0.5 * r * r, d * (ar - 0.5 * d))
            f = (h if weights is None else weights * h).sum(1)
            if order == 0:
                return f
            w = ez / total                                   # softmax: ∂LSE/∂z
            h1 = np.clip(r, -d, d) if weights is None else weights * np.clip(r, -d, d)
            hw = h1[:, None, :] * w
            g = np.stack([(hw[:, self._term[p]] * self._dz[p]).sum(1) for p in range(self.P)], 1)
            if order == 1:
                return f, g
            h2 = (ar <= d).astype(float) if curvature == "exact" else np.minimum(1.0, d / np.maximum(ar, 1e-300))
            if weights is not None:
                h2 = weights * h2
            # ∇²Huber(r) in z-space: h2·w wᵀ + h1·(diag w − w wᵀ).
            H = np.empty((B, self.P, self.P))
            for t, s, P, Q, mat in self._blocks:
                m = (h2 - h1) * w[:, t] * w[:, s]
                if t == s:
                    m = m + h1 * w[:, t]
                vals = m @ mat
                H[:, P, Q] = vals
                H[:, Q, P] = vals
            return f, g, H


# ----------------------------------------------------------------------------- solver

def _rows(weights, idx):
    return weights[idx] if weights is not None and np.ndim(weights) == 2 else weights


def _newton(obj: _Objective, theta: np.ndarray, weights=None, *, curvature="exact", max_iter=100):
    """Damped Newton on B problems at once (one per row of θ, or per row of weights).

    Step: −(H⁺ + μ·|H|·I)⁻¹ g with H⁺ the Hessian's eigenvalues floored at 1e-10·|H|; a step
    that does not lower f is refused and μ grows ×8, an accepted one shrinks μ ÷4. A problem
    stops when max|g| <= GTOL·δ·Σw (converged), or when no damped step lowers f any more.

    Returns:
        θ (B, P), f (B,), converged (B,) bool, iterations (B,).
    """
    theta = theta.copy()
    B = len(theta)
    f, g, H = obj(theta, weights, 2, curvature)
    tol = np.broadcast_to(obj.gtol(weights), (B,))
    mu = np.full(B, 1e-6)
    iters, quiet = np.zeros(B, int), np.zeros(B, int)
    active = np.isfinite(f)
    for _ in range(max_iter):
        active &= (np.abs(g).max(1) > tol) & (mu < 1e8) & (quiet < 5)
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        ev, V = np.linalg.eigh(H[idx])
        scale = np.abs(ev).max(1, keepdims=True) + 1e-300
        ev = np.maximum(ev, 1e-10 * scale) + mu[idx, None] * scale
        step = -np.einsum("bij,bj->bi", V, np.einsum("bji,bj->bi", V, g[idx]) / ev)
        f_new, g_new, H_new = obj(theta[idx] + step, _rows(weights, idx), 2, curvature)
        ok = f_new <= f[idx]
        acc = idx[ok]
        stalled = ok & (f[idx] - f_new <= 1e-15 * np.abs(f_new))
        quiet[idx] = np.where(stalled, quiet[idx] + 1, np.where(ok, 0, quiet[idx]))
        theta[acc] += step[ok]
        f[acc], g[acc], H[acc] = f_new[ok], g_new[ok], H_new[ok]
        mu[acc] = np.maximum(mu[acc] / 4, 1e-12)
        mu[idx[~ok]] *= 8
        iters[idx] += 1
    return theta, f, np.abs(g).max(1) <= tol, iters


def _polish(obj: _Objective, theta: np.ndarray, weights=None):
    """scipy L-BFGS-B with the analytic gradient from θ, with tolerances sized to this objective.

    scipy's defaults (gtol 1e-5, ftol 2.2e-9) are absolute at this scale: a summed Huber loss
    with δ = 1e-3 is ~1e-3 and its gradient ~1e-4, a mean-reduced one 1e-5 and 1e-6, so the
    defaults stop a mean-reduced fit after a couple of iterations. Here gtol = GTOL·δ·n and
    ftol = 1e-15 (relative decrease ~1e-12 of f).
    """
    tol = float(obj.gtol(weights))
    w = None if weights is None else np.asarray(weights)[None]

    def fun(x):
        f, g = obj(x[None], w, 1)
        return float(f[0]), g[0]

    res = minimize(fun, theta, jac=True, method="L-BFGS-B",
                   options={"maxiter": 10_000, "maxcor": 20, "gtol": tol, "ftol": 1e-15})
    f, g = obj(res.x[None], w, 1)
    gmax = float(np.abs(g).max())
    ok = bool(np.isfinite(f[0]) and gmax <= tol)
    verdict = "converged" if ok else "NOT converged"
    msg = (f"{verdict}: L-BFGS-B says '{res.message}' after {res.nit} iterations; "
           f"max|gradient| = {gmax:.1e} (tolerance {tol:.1e})")
    return res.x, float(f[0]), ok, msg


def _fit(obj: _Objective, starts: np.ndarray, weights=None, n_refine: int = N_REFINE):
    """Multi-start fit: f on every start at once, batched Newton from the best `n_refine`, L-BFGS-B polish.

    Returns θ, f, converged, message.
    """
    f0 = np.concatenate([obj(starts[i:i + 1024], weights) for i in range(0, len(starts), 1024)])
    best = starts[np.argsort(f0, kind="stable")[:n_refine]]   # NaN sorts last
    theta, f, _, _ = _newton(obj, best, weights, curvature="majorised", max_iter=25)
    theta, f, _, _ = _newton(obj, theta, weights, curvature="exact", max_iter=100)
    # Several starts reach the optimum; among those level with the best f to ~1e-12, take the flattest.
    gmax = np.abs(obj(theta, weights, 1)[1]).max(1)
    fmin = np.nanmin(f) if np.isfinite(f).any() else np.inf
    level = np.flatnonzero(f <= fmin + 1e-12 * abs(fmin)) if np.isfinite(fmin) else np.arange(len(f))
    i = int(level[np.argmin(gmax[level])])
    x, fx, ok, msg = _polish(obj, theta[i], weights)
    return x, fx, ok, f"{msg}; best of {len(best)} refined starts out of {len(starts)}"


# ----------------------------------------------------------------------------- power law

@dataclass(frozen=True)
class PowerLawFit:
    """L(x) = E + A·x^-α (Kaplan et al. 2020; E = 0 when fitted without the irreducible term)."""
    E: float            # irreducible loss (nats), 0 without the term
    A: float            # coefficient
    alpha: float        # exponent α
    objective: float    # summed Huber loss at the optimum
    converged: bool
    message: str
    n_points: int
    variable: str = "x"     # name of x in equation(): N, D or C
    delta: float = DELTA

    def predict(self, x) -> np.ndarray:
        """Loss at x (any shape, > 0)."""
        return self.E + self.A * _positive(self.variable, x) ** -self.alpha

    def equation(self) -> str:
        """E.g. "L(N) = 1.69 + 406.4·N^-0.34"."""
        law = f"{_fmt(self.A)}·{self.variable}^{_fmt(-self.alpha)}"
        return f"L({self.variable}) = " + (f"{_fmt(self.E)} + {law}" if self.E > 0 else law)


def _power_starts(obj: _Objective, x: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """Starts consistent with the data: for E = q·min L and each α, log A = median(log(L − E) + α log x)."""
    lx = np.log(x)
    rows = []
    for q in ((0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99) if obj.irreducible else (0.0,)):
        ly = np.log(loss - q * loss.min())
        slope = np.polyfit(lx, ly, 1)[0]                       # least squares in log-log
        e = math.log(q * loss.min()) if q else float(np.log(loss.min()) - 10)
        for alpha in (-slope, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0):
            rows.append((float(np.median(ly + alpha * lx)), alpha, e))
    rows = np.array(rows)
    return obj.internal(rows[:, :1], rows[:, 1:2], rows[:, 2] if obj.irreducible else None)


def _power_objective(x, loss, irreducible, delta):
    return _Objective(np.log(x)[None], np.log(loss), irreducible=irreducible, delta=delta)


def _power_result(obj, theta, fx, ok, msg, n, variable) -> PowerLawFit:
    log_a, alpha, e = obj.natural(theta)
    E = math.exp(float(e[0])) if obj.irreducible else 0.0
    return PowerLawFit(E=E, A=math.exp(float(log_a[0, 0])), alpha=float(alpha[0, 0]), objective=fx, converged=ok,
                       message=msg, n_points=n, variable=variable, delta=obj.delta)


def fit_power_law(x, loss, *, irreducible: bool = True, delta: float = DELTA, variable: str = "x",
                  weights=None) -> PowerLawFit:
    """Fit L(x) = E + A·x^-α (or A·x^-α) by Huber loss on log L in log-sum-exp form.

    log L̂ = LSE(log A − α·log x, log E), summed Huber_δ of log L̂ − log L (as in Hoffmann et al.
    2022, approach 3, applied to one variable). Multi-start from a grid over (E, α), refined by
    batched Newton and polished with L-BFGS-B (analytic gradients).

    Args:
        x: model sizes N, tokens D or compute C, one per run (> 0).
        loss: final losses (nats, > 0).
        irreducible: include E; False fits a pure power law (Kaplan et al.'s form).
        delta: Huber threshold on log-loss residuals.
        variable: the name printed by equation().
        weights: one positive weight per point (default: all 1), e.g. the inverse noise
            variance of each point's log loss (`lab.laws`).

    Raises:
        ValueError: too few points (3 without E, 4 with), non-positive or non-finite values,
            mismatched lengths, constant loss, weights not positive or of another length.
    """
    x, loss = _inputs(3 + irreducible, "a power-law fit", **{variable: x, "loss": loss})
    if weights is not None:
        weights = np.asarray(weights, float)
        if weights.shape != x.shape or not (np.isfinite(weights).all() and (weights > 0).all()):
            raise ValueError(f"weights must be {x.size} positive numbers, one per point; got {weights!r}")
    obj = _power_objective(x, loss, irreducible, delta)
    return _power_result(obj, *_fit(obj, _power_starts(obj, x, loss), weights), x.size, variable)


# ----------------------------------------------------------------------------- Chinchilla

@dataclass(frozen=True)
class ChinchillaFit:
    """L(N, D) = E + A·N^-α + B·D^-β (Hoffmann et al. 2022, eq. 2)."""
    E: float            # irreducible loss (nats)
    A: float
    B: float
    alpha: float        # parameter exponent α
    beta: float         # data exponent β
    objective: float    # summed Huber loss at the optimum
    converged: bool
    message: str
    n_points: int
    n_starts: int       # grid starts evaluated
    delta: float = DELTA

    @property
    def a(self) -> float:
        """N_opt ∝ C^a, a = β/(α+β)."""
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> float:
        """D_opt ∝ C^b, b = α/(α+β)."""
        return self.alpha / (self.alpha + self.beta)

    def predict(self, N, D) -> np.ndarray:
        """Loss for N parameters trained on D tokens (broadcast)."""
        return self.E + self.A * _positive("N", N) ** -self.alpha + self.B * _positive("D", D) ** -self.beta

    def equation(self) -> str:
        """E.g. "L(N, D) = 1.69 + 406.4·N^-0.34 + 410.7·D^-0.28"."""
        return (f"L(N, D) = {_fmt(self.E)} + {_fmt(self.A)}·N^{_fmt(-self.alpha)} "
                f"+ {_fmt(self.B)}·D^{_fmt(-self.beta)}")


def _chinchilla_objective(N, D, loss, delta):
    return _Objective(np.log(np.stack([N, D])), np.log(loss), irreducible=True, delta=delta)


def _chinchilla_starts(obj: _Objective, starts=None) -> np.ndarray:
    if starts is None:
        g = CHINCHILLA_GRID
        starts = np.array(list(itertools.product(g["a"], g["b"], g["e"], g["alpha"], g["beta"])))
    starts = np.asarray(starts, dtype=float)
    if starts.ndim != 2 or starts.shape[1] != 5 or not np.isfinite(starts).all():
        raise ValueError(f"starts must be finite rows of (log A, log B, log E, alpha, beta), got shape {starts.shape}")
    return obj.internal(starts[:, :2], starts[:, 3:], starts[:, 2])


def _chinchilla_result(obj, theta, fx, ok, msg, n, n_starts) -> ChinchillaFit:
    log_c, exps, e = obj.natural(theta)
    return ChinchillaFit(E=math.exp(float(e[0])), A=math.exp(float(log_c[0, 0])), B=math.exp(float(log_c[0, 1])),
                         alpha=float(exps[0, 0]), beta=float(exps[0, 1]), objective=fx, converged=ok, message=msg,
                         n_points=n, n_starts=n_starts, delta=obj.delta)


def fit_chinchilla(N, D, loss, *, delta: float = DELTA, starts=None, n_refine: int = N_REFINE) -> ChinchillaFit:
    """Fit L(N, D) = E + A/N^α + B/D^β: Hoffmann et al. 2022, approach 3.

    Minimises Σ_i Huber_δ(LSE(a − α log N_i, b − β log D_i, e) − log L_i) with A = e^a,
    B = e^b, E = e^e (summed, not averaged). The objective is evaluated on the whole start
    grid at once (default: the paper's 4,500 starts, CHINCHILLA_GRID), the best `n_refine`
    are refined together by a damped Newton method with the analytic Hessian, and the best
    result is polished by scipy's L-BFGS-B with analytic gradients. `converged` is True only
    when the final gradient is below GTOL·δ·n; `message` says why it stopped.

    Args:
        N: parameters per run. D: training tokens per run. loss: final loss (nats).
        delta: Huber threshold (1e-3 in the paper).
        starts: optional (k, 5) rows of (log A, log B, log E, α, β) replacing the grid.
        n_refine: how many of the best starts Newton refines.

    Raises:
        ValueError: fewer than 6 points, non-positive/NaN values, mismatched lengths, constant loss.
    """
    N, D, loss = _inputs(6, "a Chinchilla fit", N=N, D=D, loss=loss)
    if not isinstance(n_refine, (int, np.integer)) or n_refine < 1:
        raise ValueError(f"n_refine must be a whole number >= 1, got {n_refine!r}; the default is {N_REFINE}")
    obj = _chinchilla_objective(N, D, loss, delta)
    grid = _chinchilla_starts(obj, starts)
    return _chinchilla_result(obj, *_fit(obj, grid, n_refine=n_refine), N.size, len(grid))


# ----------------------------------------------------------------------------- allocation

@dataclass(frozen=True, eq=False)
class Allocation:
    """Compute-optimal N and D for budgets C (arrays shaped like C)."""
    C: np.ndarray                  # FLOPs
    N_opt: np.ndarray              # parameters
    D_opt: np.ndarray              # tokens
    tokens_per_param: np.ndarray   # D_opt / N_opt (~20 for Chinchilla)
    loss: np.ndarray               # predicted loss at (N_opt, D_opt)


def _allocate(A, B, alpha, beta, C):
    """Hoffmann et al. 2022, eq. 4: N = G·(C/6)^(β/(α+β)), D = (C/6)^(α/(α+β))/G, G = (αA/(βB))^(1/(α+β))."""
    s = alpha + beta
    G = (alpha * A / (beta * B)) ** (1 / s)
    return G * (C / 6) ** (beta / s), (C / 6) ** (alpha / s) / G


def compute_optimal(fit: ChinchillaFit, C, *, flops_per_token=None) -> Allocation:
    """Minimise L(N, D) subject to a compute budget C, for every budget in C.

    With `flops_per_token` None the budget is Chinchilla's C = 6ND and the answer is closed-form
    (Hoffmann et al. 2022, eq. 4): N_opt = G·(C/6)^(β/(α+β)), D_opt = G⁻¹·(C/6)^(α/(α+β)),
    G = (αA/(βB))^(1/(α+β)). With `flops_per_token` a function N -> training FLOPs per token (the
    lab's count, `lab.counting.flops_per_token`, e.g. `lab.allocation.flops_curve` of a family's
    runs) the budget is C = flops_per_token(N)·D, as the lab's plans spend it, and N_opt is found
    numerically; then D_opt·flops_per_token(N_opt) = C exactly.

    Returns:
        Allocation with arrays shaped like C: N_opt, D_opt, tokens_per_param, predicted loss.

    Raises:
        TypeError: fit is not a ChinchillaFit. ValueError: C not positive, or α, β, A, B not positive.
    """
    if not isinstance(fit, ChinchillaFit):
        raise TypeError(f"compute_optimal needs a ChinchillaFit (from fit_chinchilla), got {type(fit).__name__}")
    if min(fit.alpha, fit.beta, fit.A, fit.B) <= 0:
        raise ValueError(f"no compute-optimal allocation for α={fit.alpha:g}, β={fit.beta:g}, A={fit.A:g}, "
                         f"B={fit.B:g}: all must be > 0 (a non-positive exponent means loss does not fall "
                         "with N or D); refit with more varied N and D")
    C = _positive("C", C)
    N, D = _allocate(fit.A, fit.B, fit.alpha, fit.beta, C)
    if flops_per_token is not None:
        N = np.vectorize(lambda c, n0: _optimal_n(fit, c, n0, flops_per_token))(C, N)
        D = C / np.asarray(flops_per_token(N), dtype=float)
    out = Allocation(C=C, N_opt=N, D_opt=D, tokens_per_param=D / N, loss=fit.predict(N, D))
    for a in (out.C, out.N_opt, out.D_opt, out.tokens_per_param, out.loss):
        a.setflags(write=False)
    return out


def _optimal_n(fit: ChinchillaFit, C: float, n0: float, flops_per_token) -> float:
    """argmin over N of L(N, C / flops_per_token(N)): a grid in ln N around the 6ND answer n0
    (1e-4 to 1e4 times it), then a bounded scalar search between the grid's neighbours."""
    from scipy.optimize import minimize_scalar
    loss = lambda x: fit.predict(np.exp(x), C / np.asarray(flops_per_token(np.exp(x)), dtype=float))
    xs = np.log(n0) + np.linspace(-4, 4, 801) * math.log(10)
    ys = loss(xs)
    i = int(np.argmin(ys))
    if i in (0, len(xs) - 1):
        raise ValueError(f"no compute-optimal N for C = {C:.3g} under the given FLOP count: the loss still falls at "
                         f"N = {math.exp(xs[i]):.3g}, the end of the search; check flops_per_token (FLOPs per token "
                         "for a model of N parameters, about 6N)")
    r = minimize_scalar(lambda x: float(loss(x)), bounds=(xs[i - 1], xs[i + 1]), method="bounded", options={"xatol": 1e-10})
    return float(np.exp(r.x))


def predict_loss(fit: ChinchillaFit | PowerLawFit, N, D=None) -> np.ndarray:
    """L̂(N, D) from a Chinchilla fit, or L̂(x) from a power-law fit (pass x as N)."""
    return fit.predict(N, D) if isinstance(fit, ChinchillaFit) else fit.predict(N)


# ----------------------------------------------------------------------------- allocation laws (approaches 1, 2)

@dataclass(frozen=True)
class _AllocationLaw:
    a: float          # N_opt = N_coef·C^a
    b: float          # D_opt = D_coef·C^b
    N_coef: float
    D_coef: float

    def n_opt(self, C) -> np.ndarray:
        return self.N_coef * _positive("C", C) ** self.a

    def equation(self) -> str:
        return f"N_opt = {_fmt(self.N_coef)}·C^{_fmt(self.a)}, D_opt = {_fmt(self.D_coef)}·C^{_fmt(self.b)}"


def _loglog(C, Y) -> tuple[float, float]:
    """Least squares log Y = log k + p·log C; returns (p, k)."""
    p, logk = np.polyfit(np.log(C), np.log(Y), 1)
    return float(p), float(np.exp(logk))


def _allocation_law(C, N_opt) -> dict:
    a, kn = _loglog(C, N_opt)
    b, kd = _loglog(C, C / (6 * N_opt))
    return {"a": a, "b": b, "N_coef": kn, "D_coef": kd}


# ----------------------------------------------------------------------------- envelope (approach 1)

@dataclass(frozen=True, eq=False)
class EnvelopeFit(_AllocationLaw):
    """Hoffmann et al. 2022, approach 1: the lower envelope of loss-vs-FLOPs curves across runs."""
    C: np.ndarray = None         # FLOP grid points kept for the fit
    L_min: np.ndarray = None     # envelope loss at each grid point
    run: np.ndarray = None       # index of the run that attains it
    N_opt: np.ndarray = None     # its parameter count
    n_runs: int = 0


def fit_envelope(curves: Sequence[tuple], N, *, n_grid: int = 200, drop_edge_runs: bool = True) -> EnvelopeFit:
    """Approach 1: over log-spaced FLOP values, the run with the lowest loss gives N_opt(C).

    Each curve's loss is interpolated linearly in log FLOPs; a grid point counts where at least
    two runs reach it. With `drop_edge_runs`, points won by the smallest or largest model are
    left out: there the true optimum may lie beyond the sampled sizes. D_opt = C/(6·N_opt).

    Args:
        curves: one (flops, loss) pair of arrays per run, flops increasing.
        N: parameters of each run.

    Raises:
        ValueError: invalid curves, or fewer than 2 distinct winning runs on the kept grid.
    """
    N = _column("N", N)
    if len(curves) != N.size:
        raise ValueError(f"got {len(curves)} curves but {N.size} values of N; pass one N per curve")
    if N.size < 2:
        raise ValueError(f"the envelope method needs at least 2 runs of different size, got {N.size}")
    logs = []
    for i, curve in enumerate(curves):
        if len(curve) != 2:
            raise ValueError(f"curves[{i}] must be a (flops, loss) pair of arrays")
        c = _column(f"curves[{i}] flops", curve[0])
        l = _column(f"curves[{i}] loss", curve[1], c.size, f"curves[{i}] flops")
        if c.size < 2 or np.any(np.diff(c) <= 0):
            raise ValueError(f"curves[{i}] needs at least 2 points with strictly increasing flops; sort them by step")
        logs.append((np.log(c), l))
    grid = np.linspace(min(c[0] for c, _ in logs), max(c[-1] for c, _ in logs), n_grid)
    losses = np.stack([np.interp(grid, c, l, left=np.inf, right=np.inf) for c, l in logs])
    covered = np.isfinite(losses).sum(0) >= 2
    run = np.argmin(losses, axis=0)
    keep = covered & ((N[run] > N.min()) & (N[run] < N.max()) if drop_edge_runs else True)
    if np.unique(run[keep]).size < 2:
        raise ValueError(f"the envelope is attained by {np.unique(run[keep]).size} run(s) away from the edges; "
                         "it needs 2 or more: train more model sizes, longer, or pass drop_edge_runs=False")
    C, run = np.exp(grid[keep]), run[keep]
    law = _allocation_law(C, N[run])
    return EnvelopeFit(**law, C=C, L_min=losses[run, np.flatnonzero(keep)], run=run, N_opt=N[run], n_runs=N.size)


# ----------------------------------------------------------------------------- bootstrap

@dataclass(frozen=True)
class Interval:
    estimate: float   # full-data fit
    low: float
    high: float


@dataclass(frozen=True, eq=False)
class BootstrapResult:
    """Percentile intervals from refits on resampled points (Efron 1979)."""
    law: str
    n: int                        # resamples drawn
    seed: int
    confidence: float
    n_converged: int              # resamples whose refit converged (the intervals use only these)
    n_rechecked: int              # resamples also refitted from the full start grid
    n_improved: int               # of those, how many multi-start improved on the warm start
    intervals: Mapping[str, Interval] = field(default_factory=dict)
    samples: Mapping[str, np.ndarray] = field(default_factory=dict)
    budgets: tuple = ()


def _law_data(law: str, N, D, loss, irreducible: bool, delta: float):
    """Objective, starts, validated columns and a result builder for one of LAWS."""
    if law == "power":
        law = "kaplan-n"
    if law not in LAWS:
        raise ValueError(f"unknown law {law!r}; choose one of: {', '.join(LAWS)} (or 'power' for kaplan-n)")
    if law == "chinchilla":
        N, D, loss = _inputs(6, "a Chinchilla fit", N=N, D=D, loss=loss)
        return law, _chinchilla_objective(N, D, loss, delta), N, D, loss, None
    if law == "kaplan-n":
        N, loss = _inputs(3 + irreducible, "a power-law fit", N=N, loss=loss)
        D = None if D is None else _column("D", D, N.size, "N")
        return law, _power_objective(N, loss, irreducible, delta), N, D, loss, N
    N, D, loss = _inputs(3 + irreducible, "a power-law fit", N=N, D=D, loss=loss)
    x = D if law == "kaplan-d" else 6 * N * D
    return law, _power_objective(x, loss, irreducible, delta), N, D, loss, x


def _natural_table(obj: _Objective, theta: np.ndarray, law: str) -> dict[str, np.ndarray]:
    log_c, exps, e = obj.natural(theta)
    out = {"E": np.exp(e)} if e is not None else {}
    if law == "chinchilla":
        out |= {"A": np.exp(log_c[:, 0]), "B": np.exp(log_c[:, 1]), "alpha": exps[:, 0], "beta": exps[:, 1]}
        s = exps[:, 0] + exps[:, 1]
        out |= {"a": exps[:, 1] / s, "b": exps[:, 0] / s}
    else:
        out |= {"A": np.exp(log_c[:, 0]), "alpha": exps[:, 0]}
    return out


def bootstrap(N, D, loss, *, law: str = "chinchilla", n: int = 1000, seed: int = 0, confidence: float = 0.95,
              budgets=None, irreducible: bool = True, delta: float = DELTA, recheck: int = 3,
              strata=None, resample_strata: bool = False) -> BootstrapResult:
    """Percentile bootstrap intervals for every parameter and derived quantity.

    Each resample is a multinomial re-weighting of the points (the same as resampling with
    replacement). All resamples are refitted together by the batched Newton solver,
    warm-started from the full-data optimum (a resample is a perturbation of the full data);
    `recheck` of them are also refitted from the whole start grid as a guard against a
    resample whose optimum moved to another basin. Derived: a = β/(α+β), b = α/(α+β) and
    N_opt, D_opt at each budget in `budgets` (Chinchilla only).

    Args:
        law: one of LAWS ("power" = "kaplan-n"); D may be None for kaplan-n.
        n: resamples. seed: for numpy's default_rng. confidence: interval mass, e.g. 0.95.
        budgets: compute budgets C (FLOPs) for allocation intervals.
        irreducible: for power laws, include E.
        strata: optional label per point (e.g. the model size); points are then resampled within
            their stratum only, so every stratum keeps its count: with several seeds per size,
            the intervals show what seed-to-seed noise does to the fit.
        resample_strata: with strata, also resample the strata themselves (a two-level bootstrap:
            sizes with replacement, then seeds within each size drawn; a draw with fewer than 4
            distinct sizes, which cannot pin a three-parameter law, is drawn again), so the
            intervals carry both the noise of the seeds and how much the law leans on each size.

    Raises:
        ValueError: bad inputs, n < 2, confidence outside (0, 1), budgets with a power law.
    """
    if not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n must be a whole number of resamples >= 2, got {n!r}; 1000 is typical")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}; e.g. 0.95")
    if not isinstance(recheck, (int, np.integer)) or recheck < 0:
        raise ValueError(f"recheck must be a whole number >= 0, got {recheck!r}")
    law, obj, N, D, loss, x = _law_data(law, N, D, loss, irreducible, delta)
    if budgets is not None and law != "chinchilla":
        raise ValueError("budgets need law='chinchilla' (a single power law has no N/D allocation)")
    budgets = () if budgets is None else tuple(float(c) for c in np.atleast_1d(_positive("budgets", budgets)))
    starts = _chinchilla_starts(obj) if law == "chinchilla" else _power_starts(obj, x, loss)
    theta_hat, _, _, _ = _fit(obj, starts)

    rng = np.random.default_rng(seed)
    if strata is None:
        W = rng.multinomial(obj.n, np.full(obj.n, 1 / obj.n), size=n).astype(float)
    else:
        strata = np.asarray(strata)
        if strata.shape != (obj.n,):
            raise ValueError(f"strata needs one label per point ({obj.n}), got {strata.shape}")
        W = np.zeros((n, obj.n))
        labels = np.unique(strata)
        drawn = np.ones((n, labels.size))
        if resample_strata:   # sizes with replacement, redrawn until a resample keeps 4 distinct ones (or all)
            need = min(labels.size, 4)
            drawn = rng.multinomial(labels.size, np.full(labels.size, 1 / labels.size), size=n).astype(float)
            for _ in range(1000):
                bad = np.flatnonzero((drawn > 0).sum(1) < need)
                if not bad.size:
                    break
                drawn[bad] = rng.multinomial(labels.size, np.full(labels.size, 1 / labels.size), size=bad.size)
        for j, label in enumerate(labels):
            idx = np.flatnonzero(strata == label)
            W[:, idx] = drawn[:, j:j + 1] * rng.multinomial(idx.size, np.full(idx.size, 1 / idx.size), size=n)
    theta, f, ok, _ = _newton(obj, np.tile(theta_hat, (n, 1)), W, curvature="exact", max_iter=100)
    if not ok.all():   # slow cases: positive-definite majorised steps, then exact Newton again
        bad = np.flatnonzero(~ok)
        t, _, _, _ = _newton(obj, theta[bad], W[bad], curvature="majorised", max_iter=50)
        theta[bad], f[bad], ok[bad], _ = _newton(obj, t, W[bad], curvature="exact", max_iter=100)
    improved = 0
    for j in range(min(recheck, n)):
        t, fj, okj, _ = _fit(obj, starts, W[j])
        if fj < f[j] - 1e-9 * abs(f[j]):
            theta[j], f[j], ok[j], improved = t, fj, okj, improved + 1

    est = {k: float(v[0]) for k, v in _natural_table(obj, theta_hat[None], law).items()}
    samples = _natural_table(obj, theta[ok], law)
    for c in budgets:
        key = f"@{c:.3g}"
        A, B, al, be = (np.array([est[k]]) for k in ("A", "B", "alpha", "beta"))
        Nc, Dc = _allocate(A, B, al, be, c)
        est |= {"N_opt" + key: float(Nc[0]), "D_opt" + key: float(Dc[0])}
        samples["N_opt" + key], samples["D_opt" + key] = _allocate(samples["A"], samples["B"], samples["alpha"],
                                                                    samples["beta"], c)
    q = 100 * np.array([(1 - confidence) / 2, (1 + confidence) / 2])
    intervals = {}
    for k, v in samples.items():
        v.setflags(write=False)
        lo, hi = np.percentile(v, q) if v.size else (math.nan, math.nan)
        intervals[k] = Interval(est[k], float(lo), float(hi))
    return BootstrapResult(law=law, n=n, seed=seed, confidence=confidence, n_converged=int(ok.sum()),
                           n_rechecked=min(recheck, n), n_improved=improved, intervals=intervals, samples=samples,
                           budgets=budgets)


# ----------------------------------------------------------------------------- holdout

@dataclass(frozen=True)
class HoldoutRow:
    N: float
    D: float            # nan for kaplan-n without tokens
    loss: float         # measured
    predicted: float    # from the fit on the smaller runs
    rel_error: float    # (predicted − loss) / loss


@dataclass(frozen=True)
class HoldoutCheck:
    """Extrapolation check: fit on the smaller runs, predict the larger ones."""
    law: str
    fit: ChinchillaFit | PowerLawFit
    threshold: float         # held out: runs whose size variable is >= this
    n_train: int
    rows: tuple = ()         # HoldoutRow per held-out point, by increasing size

    @property
    def max_abs_rel_error(self) -> float:
        return float(np.max([abs(r.rel_error) for r in self.rows]))


def holdout_check(N, D, loss, *, law: str = "chinchilla", holdout_fraction: float = 0.2, n_largest: int | None = None,
                  irreducible: bool = True, delta: float = DELTA) -> HoldoutCheck:
    """Fit on the smaller runs and report the relative error of predicting the held-out larger ones.

    "Size" is N for chinchilla and kaplan-n, D for kaplan-d, C = 6ND for kaplan-c. Whole sizes
    are held out together: `n_largest` distinct largest sizes, else the fewest largest sizes
    that cover `holdout_fraction` of the points.

    Raises:
        ValueError: bad inputs, or too few points left to fit.
    """
    law, _, N, D, loss, x = _law_data(law, N, D, loss, irreducible, delta)
    size = N if law == "chinchilla" else x
    values = np.unique(size)[::-1]
    if n_largest is not None:
        if not isinstance(n_largest, int) or not 1 <= n_largest < values.size:
            raise ValueError(f"n_largest must be a whole number from 1 to {values.size - 1} "
                             f"(there are {values.size} distinct sizes), got {n_largest!r}")
        threshold = values[n_largest - 1]
    else:
        if not 0 < holdout_fraction < 1:
            raise ValueError(f"holdout_fraction must be between 0 and 1, got {holdout_fraction!r}; e.g. 0.2")
        counts = np.cumsum([np.sum(size == v) for v in values])
        threshold = values[int(np.searchsorted(counts, max(1, round(holdout_fraction * size.size))))]
    test = size >= threshold
    try:
        if law == "chinchilla":
            fit = fit_chinchilla(N[~test], D[~test], loss[~test], delta=delta)
            pred = fit.predict(N[test], D[test])
        else:
            var = {"kaplan-n": "N", "kaplan-d": "D", "kaplan-c": "C"}[law]
            fit = fit_power_law(x[~test], loss[~test], irreducible=irreducible, delta=delta, variable=var)
            pred = fit.predict(x[test])
    except ValueError as e:
        raise ValueError(f"holding out sizes >= {threshold:.3g} leaves {int((~test).sum())} runs to fit, and that "
                         f"fit fails: {e}. Hold out fewer (a smaller holdout_fraction or n_largest)") from None
    Dt = D[test] if D is not None else np.full(test.sum(), math.nan)
    order = np.argsort(size[test], kind="stable")
    rows = tuple(HoldoutRow(float(N[test][i]), float(Dt[i]), float(loss[test][i]), float(pred[i]),
                            float((pred[i] - loss[test][i]) / loss[test][i])) for i in order)
    return HoldoutCheck(law=law, fit=fit, threshold=float(threshold), n_train=int((~test).sum()), rows=rows)
