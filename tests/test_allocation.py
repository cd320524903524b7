"""The compute-optimal split (lab.allocation): one FLOP convention from plan to fit to allocation,
approach 3 by variable projection recovering a known law, approach 2's bias off-centre, intervals
whose coverage is checked by simulation, and the bad inputs of an IsoFLOP study."""

import math

import numpy as np
import pytest

from lab.allocation import fit_chinchilla_varpro, fit_isoflop, fit_split, flops_curve
from lab.config import ConfigError, RunConfig
from lab.counting import flops_per_token, param_counts, run_flops
from lab.fit import ChinchillaFit, compute_optimal
from lab.plans import isoflop, ladder_base

BUDGETS = list(np.geomspace(3e11, 3e12, 5))   # the study's design (bench/isoflop.py), at 1 seed


def law(E, A, B, alpha, beta) -> ChinchillaFit:
    return ChinchillaFit(E=E, A=A, B=B, alpha=alpha, beta=beta, objective=0.0, converged=True, message="",
                         n_points=0, n_starts=0)


def design(seeds=(0,), **kw):
    plan = isoflop(ladder_base(RunConfig()), BUDGETS, n_sizes=7, span=kw.get("span", 3),
                   tokens_per_param=kw.get("centre", 60), seeds=list(seeds))
    N = np.array([param_counts(c.model).total for c in plan.configs], float)
    fpt = np.array([flops_per_token(c.model) for c in plan.configs], float)
    D = np.array([c.tokens for c in plan.configs], float)
    return plan, N, fpt, D, np.array(plan.budgets)


TRUE = law(1.0, 60.0, 300.0, 0.35, 0.40)     # optimum near 20 tokens per parameter at these budgets


def test_one_flop_convention_from_plan_to_fit_to_allocation():
    plan, N, fpt, D, C = design()
    for cfg, c in zip(plan.configs, C):      # the plan spends each budget in the lab's count, to half a batch
        assert abs(run_flops(cfg) - c) <= flops_per_token(cfg.model) * cfg.tokens_per_step / 2
    curve = flops_curve(N, fpt)
    assert curve(N) == pytest.approx(fpt, rel=1e-12)            # exact at the sampled sizes
    fit = fit_isoflop(N, D, TRUE.predict(N, D), C=C, flops_per_token=fpt, decimals=None)
    assert fit.convention == "lab" and fit.n_used == 5
    for p in fit.profiles:
        assert p.D_opt * float(curve(p.N_opt)) == pytest.approx(p.C, rel=1e-12)
        assert p.tokens_per_param == pytest.approx(p.D_opt / p.N_opt)
    alloc = compute_optimal(TRUE, C, flops_per_token=curve)
    assert alloc.D_opt * curve(alloc.N_opt) == pytest.approx(C, rel=1e-12)
    # the lab's count is not 6N at these sizes (embedding lookups are free, attention is not)
    assert not np.allclose(fpt, 6 * N, rtol=0.01)
    six = compute_optimal(TRUE, C, flops_per_token=lambda n: 6 * np.asarray(n))
    closed = compute_optimal(TRUE, C)
    assert six.N_opt == pytest.approx(closed.N_opt, rel=1e-6)
    assert fit_isoflop(N, D, TRUE.predict(N, D), C=C, decimals=None).convention == "6N"


def test_variable_projection_recovers_a_known_law_where_parabolas_are_biased():
    # sizes centred on 60 tokens per parameter over a 16x span while the optimum is near 20: off-centre and
    # wide, the two causes of approach 2's bias that Xu et al. 2026 name
    plan, N, fpt, D, C = design(span=4)
    y = TRUE.predict(N, D)
    curve = flops_curve(N, fpt)
    C_ref = float(np.exp(np.log(np.unique(C)).mean()))
    truth = float(compute_optimal(TRUE, C_ref, flops_per_token=curve).tokens_per_param)
    f3 = fit_chinchilla_varpro(N, D, y)
    assert f3.converged, f3.message
    for k in ("E", "A", "B", "alpha", "beta"):
        assert getattr(f3, k) == pytest.approx(getattr(TRUE, k), rel=1e-4), k
    split = fit_split(N, D, y, flops_per_token=fpt, C_ref=C_ref)
    assert split.tokens_per_param_ref == pytest.approx(truth, rel=1e-4)
    two = fit_isoflop(N, D, y, C=C, flops_per_token=fpt, decimals=None)
    bias = abs(float(two.tokens_per_param(C_ref)) / truth - 1)
    assert bias > 0.01                        # noise-free, yet off by more than 1 %
    assert bias > 100 * abs(split.tokens_per_param_ref / truth - 1)


@pytest.mark.parametrize("truth", [TRUE, law(1.2, 30.0, 2000.0, 0.3, 0.5)], ids=["near-20", "near-200"])
def test_intervals_cover_the_truth_in_simulation(truth):
    """Noise as the study's seeds show (σ = 0.01 nats), the study's design: both approaches'
    95 % intervals for tokens per parameter contain the truth in most datasets. At 100 datasets
    per law (measured once, 2026-12-03): approach 2 covered 96 % and 93 %, approach 3 94 % and 97 %."""
    plan, N, fpt, D, C = design(seeds=(0, 1))
    curve = flops_curve(N, fpt)
    C_ref = float(np.exp(np.log(np.unique(C)).mean()))
    t = float(compute_optimal(truth, C_ref, flops_per_token=curve).tokens_per_param)
    y = truth.predict(N, D)
    n, covered2, covered3 = 16, 0, 0
    for k in range(n):
        yk = y + 0.01 * np.random.default_rng(k).standard_normal(y.size)
        i2 = fit_isoflop(N, D, yk, C=C, flops_per_token=fpt, decimals=None, draws=80, seed=k).intervals
        i3 = fit_split(N, D, yk, flops_per_token=fpt, C_ref=C_ref, draws=30, seed=k).intervals
        covered2 += i2["tokens_per_param"].low <= t <= i2["tokens_per_param"].high
        covered3 += i3["tokens_per_param"].low <= t <= i3["tokens_per_param"].high
    assert covered2 >= 0.75 * n and covered3 >= 0.75 * n, (covered2, covered3)


def test_bad_inputs_are_refused_before_anything_trains():
    base = ladder_base(RunConfig())
    with pytest.raises(ConfigError, match="more than once"):
        isoflop(base, [1e12, 3e12, 1e12], n_sizes=5)
    plan = isoflop(base, [1e8, 1e12], widths=[32, 64, 128])   # 1e8 FLOPs is less than one batch for every size
    assert {b for b in plan.budgets} == {1e12}
    assert sum("less than one batch" in r and "C=1e+08" in r for r in plan.refused) == 3
    with pytest.raises(ConfigError, match="no IsoFLOP point has at least one batch"):
        isoflop(base, [1e8], widths=[32, 64])
    with pytest.raises(ConfigError, match="span"):
        isoflop(base, [1e12], n_sizes=5, span=1.0)
    _, N, fpt, D, C = design()
    y = TRUE.predict(N, D)
    three = np.isin(np.arange(N.size) % 7, [4, 5, 6])          # 3 sizes per budget: no residual left for the noise
    with pytest.raises(ValueError, match="no residual"):
        fit_isoflop(N[three], D[three], y[three], C=C[three], flops_per_token=fpt[three], decimals=None, draws=50)
    low = np.isin(np.arange(N.size) % 7, [0, 1, 2])            # only the smallest sizes: the valley is above them
    with pytest.raises(ValueError, match="not bracketed"):
        fit_isoflop(N[low], D[low], y[low], C=C[low], flops_per_token=fpt[low], decimals=None)


@pytest.fixture
def study_store(tmp_path):
    """The study's design (2 seeds) in a store, its losses from TRUE with the seeds' noise, written
    straight to the store with their budgets (no training: the fits read numbers)."""
    from lab.store import RunStore
    from lab.trackers import RunResult
    plan, N, fpt, D, C = design(seeds=(0, 1))
    store = RunStore(tmp_path / "store")
    losses = TRUE.predict(N, D) + 0.01 * np.random.default_rng(3).standard_normal(N.size)
    for cfg, b, loss in zip(plan.configs, plan.budgets, losses):
        counts, f = param_counts(cfg.model), flops_per_token(cfg.model)
        store.commit(RunResult(
            run_id=cfg.run_id, config=cfg, status="done", train_loss=loss, eval_loss=loss, eval_bpb=loss / math.log(2),
            tokens=cfg.tokens_trained, steps=cfg.steps, flops=float(f * cfg.tokens_trained), flops_per_token=f,
            params_total=counts.total, params_embedding=counts.embedding, params_non_embedding=counts.non_embedding,
            epochs=0.5, wall_s=1.0, first_step_s=0.5, tokens_per_s=1e5, device="cpu:test", diverged_step=None,
            unigram_loss=5.0, entropy_rate=None, dataset="builtin", curve=()), save_weights=False, budget=b)
    return plan, store, N, fpt, D, C, losses


def test_the_command_line_reports_the_split_from_a_store(study_store, capsys):
    """`scaling-lab fit --store PATH --law isoflop --json` on a store of IsoFLOP runs: the per-budget
    optima in the lab's FLOP count, the exponents and the tokens per parameter with intervals,
    approach 3 beside."""
    import json

    from lab.cli import main
    plan, store, N, fpt, D, C, losses = study_store
    tmp = store.path
    assert main(["fit", "--store", str(tmp), "--law", "isoflop", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    fit = out["fit"]
    assert out["convention"].startswith("C = flops_per_token(N)·D")
    assert [p["C"] for p in fit["profiles"]] == pytest.approx(BUDGETS)        # grouped by the planned budgets
    curve = flops_curve(N, fpt)
    for p in fit["profiles"]:
        assert p["usable"] and p["D_opt"] * float(curve(p["N_opt"])) == pytest.approx(p["C"], rel=1e-9)
    expect = fit_isoflop(N, D, losses, C=C, flops_per_token=fpt, decimals=None, draws=400, seed=0)
    assert fit["a"] == pytest.approx(expect.a) and fit["tokens_per_param"] == pytest.approx(
        float(expect.tokens_per_param(expect.C_ref)))
    iv = fit["intervals"]["tokens_per_param"]
    assert iv["low"] < fit["tokens_per_param"] < iv["high"]
    assert set(fit["intervals"]) == {"a", "b", "tokens_per_param"} | {f"N_opt@{c:.3g}" for c in BUDGETS}
    for p in fit["profiles"]:
        n = fit["intervals"][f"N_opt@{p['C']:.3g}"]
        assert n["low"] < p["N_opt"] < n["high"]
    a3 = out["approach3"]
    assert a3["alpha"] == pytest.approx(fit_chinchilla_varpro(N, D, losses).alpha)
    assert a3["intervals"]["tokens_per_param"]["low"] < a3["tokens_per_param"] < a3["intervals"]["tokens_per_param"]["high"]
    assert len(a3["allocation"]) == 5
    assert main(["fit", "--store", str(tmp), "--law", "isoflop", "--bootstrap", "50"]) == 0
    text = capsys.readouterr().out
    assert "tokens per parameter at C = " in text and "approach 3 (variable projection" in text


def test_the_study_reports_both_approaches_and_draws_its_valleys(study_store):
    from bench import isoflop as bench
    plan, store, N, fpt, D, C, losses = study_store
    out = bench.study(plan, store, draws=60)
    assert out["runs_done"] == len(plan) and out["approach2"]["draws_used"] == 60
    expect = fit_isoflop(N, D, losses, C=C, flops_per_token=fpt, decimals=None)
    assert out["approach2"]["a"] == pytest.approx(expect.a)
    assert out["approach3"]["alpha"] == pytest.approx(fit_chinchilla_varpro(N, D, losses).alpha)
    text = bench.report(out)
    assert f"{out['approach2']['tokens_per_param']:.1f} [" in text and "the ladder uses 20" in text
    fig = bench.figure(out)
    assert sum(t.name == "minima (approach 2)" for t in fig.data) == 1
    budgets = [t for t in fig.data if t.mode == "markers" and (t.name or "").startswith("C = ")]
    assert len(budgets) == 5 and sum(len(t.x) for t in budgets) == len(plan)      # every run drawn
