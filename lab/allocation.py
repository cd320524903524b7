"""The compute-optimal split measured from IsoFLOP runs, in the lab's FLOP count.

Approach 2 (Hoffmann et al. 2022): for each budget C, a parabola in ln N through the losses of
the models trained with C FLOPs; its vertex is N_opt(C), and D_opt = C / flops_per_token(N_opt).
Then ln N_opt = ln k_N + a·ln C and ln D_opt = ln k_D + b·ln C by least squares. The parabola is a
Taylor approximation of the valley: Xu et al. 2026 (arXiv 2603.22339, "Problems with Chinchilla
Approach 2") show that its vertex is biased even without noise when the sizes span a wide range,
sit off the optimum's centre, or the valley is asymmetric (α ≠ β).

Approach 3 by variable projection (the remedy Xu et al. recommend): L = E + A·N^-α + B·D^-β is
linear in (E, A, B) once (α, β) are fixed, so a grid over (α, β) with non-negative least squares
inside, then a local search on the two exponents, finds the least-squares optimum without the
4,500-start grid of the Huber fit (`lab.fit.fit_chinchilla`). `lab.fit.compute_optimal` with the
runs' FLOP count then gives the split.

One FLOP convention: a budget is C = flops_per_token(N)·D with the lab's count
(`lab.counting.flops_per_token`: 6·N_matmul + attention), as the plans spend it
(`lab.plans.isoflop`), and N = all parameters, as the ladder's tokens per parameter count them.
A table with no FLOP count falls back to Chinchilla's C = 6ND, and the result says so.

Intervals: a parametric bootstrap. The noise σ is the pooled residual spread of the fits (seeds
included); each draw adds fresh N(0, σ²) noise to the fitted losses and refits everything, and
the percentiles of the refitted quantities give the intervals. A draw whose valley is not
bracketed at some budget is left out and counted (`draws_used`).
"""

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from lab.fit import ChinchillaFit, Interval, _AllocationLaw, _inputs, _loglog, _positive, compute_optimal

__all__ = ["IsoFLOPProfile", "IsoFLOPFit", "Split", "fit_isoflop", "fit_chinchilla_varpro", "fit_split",
           "flops_curve"]

CONVENTIONS = {"lab": "C = flops_per_token(N)·D, the lab's count (6·N_matmul + attention), N = all parameters",
               "6N": "C = 6·N·D (Chinchilla's convention: no FLOP count was given)"}


def flops_curve(N, flops_per_token) -> Callable[[np.ndarray], np.ndarray]:
    """FLOPs per token as a function of N, from runs of one family: linear in log-log between
    the runs' sizes (their mean per size), extended with the end segments' slopes."""
    N, f = np.asarray(N, dtype=float), np.asarray(flops_per_token, dtype=float)
    sizes = np.unique(N)
    x = np.log(sizes)
    y = np.log([f[N == s].mean() for s in sizes])
    if sizes.size == 1:
        return lambda n: f[0] * np.asarray(n, dtype=float) / sizes[0]
    lo, hi = (y[1] - y[0]) / (x[1] - x[0]), (y[-1] - y[-2]) / (x[-1] - x[-2])

    def curve(n):
        xn = np.log(np.asarray(n, dtype=float))
        out = np.interp(xn, x, y)
        out = np.where(xn < x[0], y[0] + lo * (xn - x[0]), out)
        return np.exp(np.where(xn > x[-1], y[-1] + hi * (xn - x[-1]), out))
    return curve


def _six_n(n):
    return 6 * np.asarray(n, dtype=float)


# ----------------------------------------------------------------------------- approach 2

@dataclass(frozen=True)
class IsoFLOPProfile:
    """One compute budget: a parabola L = p0 + p1·x + p2·x² in x = ln N, and its vertex when usable."""
    C: float                 # budget (FLOPs): the given C, or the geometric mean of the group's C
    n_points: int
    usable: bool
    reason: str              # why the budget was left out ("" when usable)
    N_opt: float = math.nan
    D_opt: float = math.nan  # C / flops_per_token(N_opt)
    L_opt: float = math.nan
    coef: tuple = ()         # (p0, p1, p2) in x = ln N
    tokens_per_param: float = math.nan   # D_opt / N_opt
    sizes: tuple = ()        # the distinct N sampled
    residual_ss: float = 0.0  # Σ (loss − parabola)² (for the pooled noise)

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(self).items()}


def _vertex(C, x, loss, fpt):
    """(usable, reason, N_opt, D_opt, L_opt, coef) of one parabola in x = ln N."""
    p2, p1, p0 = np.polyfit(x, loss, 2)
    coef = (float(p0), float(p1), float(p2))
    if p2 <= 0:
        return False, (f"the parabola opens downwards (curvature {p2:.3g}), so it has no minimum; "
                       "sample model sizes on both sides of the optimum"), coef
    xv = -p1 / (2 * p2)
    if not x.min() <= xv <= x.max():
        side, edge = ("above the largest", math.exp(x.max())) if xv > x.max() else ("below the smallest", math.exp(x.min()))
        return False, (f"the minimum (N ≈ {math.exp(xv):.3g}) lies {side} sampled size ({edge:.3g}), so it is not "
                       "bracketed: add models beyond it"), coef
    n_opt = math.exp(xv)
    return True, (n_opt, C / float(fpt(n_opt)), float(p0 + p1 * xv + p2 * xv * xv)), coef


def _profile(C: float, N: np.ndarray, loss: np.ndarray, fpt) -> IsoFLOPProfile:
    sizes = tuple(float(s) for s in np.unique(N))
    if len(sizes) < 3:
        return IsoFLOPProfile(C, N.size, False, f"only {len(sizes)} distinct model size(s); a parabola needs 3",
                              sizes=sizes)
    x = np.log(N)
    ok, what, coef = _vertex(C, x, loss, fpt)
    rss = float(np.sum((loss - np.polyval(coef[::-1], x)) ** 2))
    if not ok:
        return IsoFLOPProfile(C, N.size, False, what, coef=coef, sizes=sizes, residual_ss=rss)
    n_opt, d_opt, l_opt = what
    return IsoFLOPProfile(C, N.size, True, "", n_opt, d_opt, l_opt, coef, d_opt / n_opt, sizes, rss)


@dataclass(frozen=True, eq=False)
class IsoFLOPFit(_AllocationLaw):
    """Approach 2: N_opt ∝ C^a and D_opt ∝ C^b from per-budget parabola minima, with intervals."""
    profiles: tuple = ()          # IsoFLOPProfile per budget, by increasing C
    n_used: int = 0
    convention: str = "lab"       # a key of CONVENTIONS
    C_ref: float = math.nan       # geometric mean of the usable budgets: where tokens per parameter is quoted
    sigma: float = math.nan       # pooled residual spread of the parabolas (nats)
    dof: int = 0                  # its degrees of freedom: Σ (points − 3) over usable budgets
    draws: int = 0                # bootstrap draws asked
    draws_used: int = 0           # of them, draws with every usable budget still bracketed
    confidence: float = 0.95
    intervals: Mapping[str, Interval] = field(default_factory=dict)   # a, b, tokens_per_param (at C_ref), N_opt@C

    def tokens_per_param(self, C) -> np.ndarray:
        """D_opt / N_opt from the fitted laws: (k_D / k_N)·C^(b − a)."""
        C = _positive("C", C)
        return self.D_coef / self.N_coef * C ** (self.b - self.a)


def _groups(C: np.ndarray, decimals):
    key = C if decimals is None else np.round(np.log10(C), decimals)
    return [key == k for k in np.unique(key)]


def fit_isoflop(N, D, loss, *, C=None, flops_per_token=None, decimals: int | None = 1, draws: int = 0,
                seed: int = 0, confidence: float = 0.95) -> IsoFLOPFit:
    """IsoFLOP profiles (Hoffmann et al. 2022, approach 2) in the lab's FLOP count.

    Args:
        N: parameters (all) of each run; D: its tokens; loss: its final evaluation loss.
        C: each run's budget (e.g. the plan's `budget`); default flops_per_token·D.
        flops_per_token: each run's training FLOPs per token (the store's `flops_per_token`);
            None: Chinchilla's 6N (the result's `convention` says which).
        decimals: runs are grouped by log10 C rounded to this many decimals; None groups equal C.
        draws: parametric-bootstrap draws for the intervals (0: none).

    For each budget a parabola in ln N is fitted to the loss; its vertex is used only when the
    parabola is convex and the vertex lies within the sampled sizes, else the profile says why.

    Raises:
        ValueError: invalid input, or fewer than 2 usable budgets (the message lists each budget's reason).
    """
    cols = {"N": N, "D": D} | ({} if C is None else {"C": C}) | (
        {} if flops_per_token is None else {"flops_per_token": flops_per_token}) | {"loss": loss}
    arrays = dict(zip(cols, _inputs(6, "an IsoFLOP fit", **cols)))
    N, D, loss = arrays["N"], arrays["D"], arrays["loss"]
    fpt = _six_n if flops_per_token is None else flops_curve(N, arrays["flops_per_token"])
    per_run = 6 * N if flops_per_token is None else arrays["flops_per_token"]
    C = arrays.get("C", per_run * D)
    if not (0 < confidence < 1):
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}; 0.95 is usual")
    groups = _groups(C, decimals)
    profiles = [_profile(float(np.exp(np.log(C[m]).mean())), N[m], loss[m], fpt) for m in groups]
    used = [i for i, p in enumerate(profiles) if p.usable]
    if len(used) < 2:
        why = "; ".join([f"C={p.C:.3g}: {p.reason}" for p in profiles if not p.usable][:4])
        more = f" and {len(profiles) - len(used) - 4} more" if len(profiles) - len(used) > 4 else ""
        raise ValueError(f"an IsoFLOP fit needs at least 2 budgets with a bracketed minimum, got {len(used)} "
                         f"of {len(profiles)} ({why}{more}); train 3 or more model sizes around each budget's optimum")
    Cs = np.array([profiles[i].C for i in used])
    law = _law(Cs, [profiles[i].N_opt for i in used], [profiles[i].D_opt for i in used])
    C_ref = float(np.exp(np.log(Cs).mean()))
    dof = sum(profiles[i].n_points - 3 for i in used)
    sigma = math.sqrt(sum(profiles[i].residual_ss for i in used) / dof) if dof > 0 else math.nan
    intervals, draws_used = {}, 0
    if draws:
        if not isinstance(draws, (int, np.integer)) or draws < 2:
            raise ValueError(f"draws must be a whole number >= 2 (or 0 for no intervals), got {draws!r}")
        if not dof > 0:
            raise ValueError("no intervals: each usable budget has exactly 3 runs, so the parabolas pass through "
                             "every point and leave no residual to measure the noise; train more sizes or seeds")
        samples, draws_used = _bootstrap(profiles, groups, used, N, loss, fpt, sigma, draws, seed)
        if draws_used >= 2:
            q = ((1 - confidence) / 2, (1 + confidence) / 2)
            est = {"a": law["a"], "b": law["b"],
                   "tokens_per_param": law["D_coef"] / law["N_coef"] * C_ref ** (law["b"] - law["a"])} | {
                f"N_opt@{profiles[i].C:.3g}": profiles[i].N_opt for i in used}
            for k, v in samples.items():
                lo, hi = np.quantile(v, q)
                intervals[k] = Interval(float(est[k]), float(lo), float(hi))
    return IsoFLOPFit(**law, profiles=tuple(profiles), n_used=len(used),
                      convention="6N" if flops_per_token is None else "lab", C_ref=C_ref, sigma=sigma, dof=dof,
                      draws=int(draws), draws_used=draws_used, confidence=confidence, intervals=intervals)


def _law(C, N_opt, D_opt) -> dict:
    a, kn = _loglog(C, np.asarray(N_opt))
    b, kd = _loglog(C, np.asarray(D_opt))
    return {"a": a, "b": b, "N_coef": kn, "D_coef": kd}


def _bootstrap(profiles, groups, used, N, loss, fpt, sigma, draws, seed):
    rng = np.random.default_rng(seed)
    Cs = np.array([profiles[i].C for i in used])
    C_ref = float(np.exp(np.log(Cs).mean()))
    out = {"a": [], "b": [], "tokens_per_param": []} | {f"N_opt@{c:.3g}": [] for c in Cs}
    for _ in range(draws):
        n_opt, d_opt = [], []
        for i in used:
            m = groups[i]
            x = np.log(N[m])
            fitted = np.polyval(profiles[i].coef[::-1], x)
            ok, what, _ = _vertex(profiles[i].C, x, fitted + sigma * rng.standard_normal(x.size), fpt)
            if not ok:
                break
            n_opt.append(what[0])
            d_opt.append(what[1])
        else:
            law = _law(Cs, n_opt, d_opt)
            out["a"].append(law["a"])
            out["b"].append(law["b"])
            out["tokens_per_param"].append(law["D_coef"] / law["N_coef"] * C_ref ** (law["b"] - law["a"]))
            for c, n in zip(Cs, n_opt):
                out[f"N_opt@{c:.3g}"].append(n)
    return {k: np.array(v) for k, v in out.items()}, len(out["a"])


# ----------------------------------------------------------------------------- approach 3 by variable projection

ALPHA_GRID = np.linspace(0.05, 1.5, 30)    # exponents searched first (Chinchilla's are ~0.3)


def _projection(logN, logD, y, alpha, beta):
    """Non-negative least squares for (E, A, B) at fixed (α, β): (coefficients, residual sum of squares)."""
    from scipy.optimize import nnls
    X = np.stack([np.ones_like(y), np.exp(-alpha * logN), np.exp(-beta * logD)], axis=1)
    scale = np.linalg.norm(X, axis=0)
    coef, resid = nnls(X / scale, y)
    return coef / scale, float(resid ** 2)


def fit_chinchilla_varpro(N, D, loss, *, grid=ALPHA_GRID, start: tuple | None = None) -> ChinchillaFit:
    """Chinchilla's L(N, D) = E + A·N^-α + B·D^-β by least squares in L, with variable projection:
    (E, A, B) >= 0 solved exactly for every (α, β) on `grid` x `grid`, then a Nelder-Mead search
    on (α, β) from the best grid point (or from `start` = (α, β), skipping the grid: a bootstrap
    draw starts from the full fit). Returns a ChinchillaFit (delta = inf: plain least squares;
    objective = the residual sum of squares)."""
    from scipy.optimize import minimize
    N, D, loss = _inputs(6, "a Chinchilla fit", N=N, D=D, loss=loss)
    logN, logD = np.log(N), np.log(D)
    grid = np.asarray(grid, dtype=float) if start is None else np.array([])
    best = (None, *start) if start is not None else min(
        ((_projection(logN, logD, loss, a, b)[1], a, b) for a in grid for b in grid))
    lo, hi = 1e-3, 4.0
    f = lambda t: _projection(logN, logD, loss, *np.clip(t, lo, hi))[1]
    r = minimize(f, x0=best[1:], method="Nelder-Mead", options={"xatol": 1e-7, "fatol": 1e-14, "maxiter": 2000})
    alpha, beta = (float(v) for v in np.clip(r.x, lo, hi))
    (E, A, B), rss = _projection(logN, logD, loss, alpha, beta)
    notes = [n for n, bad in (("E = 0: the loss shows no floor", E <= 0), ("A = 0: the loss does not fall with N", A <= 0),
                              ("B = 0: the loss does not fall with D", B <= 0),
                              (f"an exponent at the search's edge ({lo:g} or {hi:g})", not lo < min(alpha, beta) <= max(alpha, beta) < hi))
             if bad]
    ok = bool(r.success) and not notes
    message = "converged" if ok else "; ".join(notes) or f"the search did not converge: {r.message}"
    return ChinchillaFit(E=float(E), A=float(A), B=float(B), alpha=alpha, beta=beta, objective=rss, converged=ok,
                         message=message, n_points=int(N.size), n_starts=max(1, int(grid.size ** 2)), delta=math.inf)


@dataclass(frozen=True, eq=False)
class Split:
    """Approach 3's answer: the law, the compute-optimal split at the budgets in the lab's FLOP
    count, and bootstrap intervals (alpha, beta, and tokens_per_param at C_ref)."""
    fit: ChinchillaFit
    C: np.ndarray
    N_opt: np.ndarray
    D_opt: np.ndarray
    tokens_per_param: np.ndarray
    C_ref: float
    tokens_per_param_ref: float   # D_opt / N_opt at C_ref
    convention: str
    sigma: float
    draws: int = 0
    draws_used: int = 0
    confidence: float = 0.95
    intervals: Mapping[str, Interval] = field(default_factory=dict)


def fit_split(N, D, loss, *, flops_per_token=None, budgets=None, C_ref: float | None = None, draws: int = 0,
              seed: int = 0, confidence: float = 0.95) -> Split:
    """Approach 3 on any runs that vary N and D apart (an IsoFLOP sweep's included): the law by
    variable projection, N_opt and D_opt at `budgets` (default: the runs' own budgets' range)
    with C = flops_per_token(N)·D, and parametric-bootstrap intervals with `draws` draws; tokens
    per parameter is quoted at `C_ref` (default the geometric mean of the runs' compute)."""
    N, D, loss = _inputs(6, "a Chinchilla fit", N=N, D=D, loss=loss)
    fpt = _six_n if flops_per_token is None else flops_curve(N, _inputs(6, "a FLOP count", N=N, flops_per_token=flops_per_token, loss=loss)[1])
    C_runs = fpt(N) * D
    budgets = np.geomspace(C_runs.min(), C_runs.max(), 5) if budgets is None else _positive("budgets", budgets)
    C_ref = float(np.exp(np.log(C_runs).mean())) if C_ref is None else float(_positive("C_ref", C_ref))
    fit = fit_chinchilla_varpro(N, D, loss)
    alloc = compute_optimal(fit, np.append(budgets, C_ref), flops_per_token=fpt)
    dof = N.size - 5
    sigma = math.sqrt(fit.objective / dof) if dof > 0 else math.nan
    intervals, used = {}, 0
    if draws:
        if not dof > 0:
            raise ValueError(f"no intervals from {N.size} runs: a Chinchilla fit has 5 parameters; train more runs")
        rng = np.random.default_rng(seed)
        fitted = fit.predict(N, D)
        samples = {"alpha": [], "beta": [], "tokens_per_param": []}
        for _ in range(draws):
            f = fit_chinchilla_varpro(N, D, fitted + sigma * rng.standard_normal(N.size), start=(fit.alpha, fit.beta))
            if min(f.alpha, f.beta, f.A, f.B) <= 0:
                continue
            try:
                t = float(compute_optimal(f, C_ref, flops_per_token=fpt).tokens_per_param)
            except ValueError:
                continue
            samples["alpha"].append(f.alpha)
            samples["beta"].append(f.beta)
            samples["tokens_per_param"].append(t)
        used = len(samples["alpha"])
        if used >= 2:
            q = ((1 - confidence) / 2, (1 + confidence) / 2)
            est = {"alpha": fit.alpha, "beta": fit.beta, "tokens_per_param": float(alloc.tokens_per_param[-1])}
            for k, v in samples.items():
                lo, hi = np.quantile(v, q)
                intervals[k] = Interval(float(est[k]), float(lo), float(hi))
    return Split(fit=fit, C=alloc.C[:-1], N_opt=alloc.N_opt[:-1], D_opt=alloc.D_opt[:-1],
                 tokens_per_param=alloc.tokens_per_param[:-1], C_ref=C_ref,
                 tokens_per_param_ref=float(alloc.tokens_per_param[-1]),
                 convention="6N" if flops_per_token is None else "lab", sigma=sigma, draws=int(draws), draws_used=used,
                 confidence=confidence, intervals=intervals)
