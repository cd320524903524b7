"""Forecasts of the final loss while a run trains (lab.forecast): exact on a family whose curves
share their shape, intervals that hold the truth under noise, clear reasons where none can be
made, and the progress line of `scaling-lab train` showing it."""

import io
import math

import numpy as np
import pytest

from lab.forecast import MIN_RUNS, Forecaster, level


def curve(final: float, tokens: float, *, amp=0.3, power=1.5, noise=0.0, seed=0, n=37):
    """Chunks at n evenly spaced token counts (37: none on a window edge, where rounding would decide);
    train loss final·exp(amp·(1 − t)^power)·(noise)."""
    rng = np.random.default_rng(seed)
    ts = np.arange(1, n + 1) / n
    return [{"step": int(round(t * n)), "tokens_seen": float(t * tokens), "train/loss": float(final * math.exp(amp * (1 - t) ** power
                                                                                     + noise * rng.standard_normal()))}
            for t in ts]


def family(sizes=(1e4, 2e4, 4e4, 8e4, 1.6e5), tokens_per_param=20, noise=0.0):
    law = lambda N: 0.9 + 60 * N ** -0.3
    return [(N, tokens_per_param * N, law(N), curve(law(N), tokens_per_param * N, noise=noise, seed=k))
            for k, N in enumerate(sizes)], law


def test_a_family_of_one_shape_forecasts_the_final_loss_exactly():
    runs, law = family()
    fc = Forecaster(runs)
    N = 3.2e5                                                     # bigger than every finished run
    pts = curve(law(N), 20 * N)
    for t in (0.25, 0.5, 0.75):
        f = fc.forecast(N, 20 * N, [p for p in pts if p["tokens_seen"] <= t * 20 * N + 1e-6], fraction=t)
        assert f.fraction == pytest.approx(t)
        assert f.loss == pytest.approx(law(N), rel=1e-9)
        assert f.runs == 5 and f.low <= f.loss <= f.high
        assert f.beyond and "beyond those it learnt from" in f.words()     # it says that it extrapolates
    assert level(pts, 20 * N, 0.5) == pytest.approx(law(N) * math.exp(0.3 * 0.5 ** 1.5), rel=0.02)


def test_under_noise_the_interval_holds_the_final_loss_mostly():
    hits, n = 0, 40
    for k in range(n):
        rng = np.random.default_rng(k)
        runs, law = family(sizes=tuple(np.geomspace(1e4, 2e5, 8)), noise=0.01)
        runs = [(N, D, final * math.exp(0.01 * rng.standard_normal()), pts) for N, D, final, pts in runs]
        N = 4e5
        truth = law(N) * math.exp(0.01 * rng.standard_normal())
        pts = curve(law(N), 20 * N, noise=0.01, seed=100 + k)
        f = Forecaster(runs).forecast(N, 20 * N, [p for p in pts if p["tokens_seen"] <= 0.25 * 20 * N + 1e-6])
        hits += f.low <= truth <= f.high
    assert hits >= 0.75 * n, hits                                 # a 90 % interval


def test_no_forecast_without_enough_runs_or_curve():
    runs, law = family()
    pts = curve(law(1e5), 2e6)
    assert f"needs {MIN_RUNS} finished runs" in Forecaster(runs[:2]).why_not(0.5)
    assert Forecaster(runs[:2]).forecast(1e5, 2e6, pts[:10]) is None
    assert "before 10%" in Forecaster(runs).why_not(0.05)
    assert Forecaster(runs).forecast(1e5, 2e6, pts[:1]) is None        # 2.5 % of the tokens: too early
    assert Forecaster(runs).forecast(1e5, 2e6, []) is None
    assert Forecaster(runs).why_not(1.0) == "the run has finished"


def test_the_progress_line_shows_the_forecast():
    from lab.config import RunConfig
    from lab.counting import param_counts
    from lab.trackers import Event, ProgressBar
    cfg = RunConfig()
    N, D = param_counts(cfg.model).total, cfg.tokens_trained
    runs, law = family(sizes=(N / 4, N / 2, N * 2, N * 4))
    out = io.StringIO()
    bar = ProgressBar(file=out, forecaster=Forecaster(runs))
    bar.start(cfg, {"tokens": D, "seeds": 1})
    for p in curve(law(N), D)[:20]:
        bar.log(Event(run_id=cfg.run_id, seed=cfg.seed, step=1, steps=cfg.steps, tokens=math.ceil(p["tokens_seen"]),
                      flops=0.0, train_loss=p["train/loss"], eval_loss=None, lr=1e-3, tokens_per_s=1.0, elapsed_s=1.0))
    bar.bar.refresh()
    assert bar.last_forecast.loss == pytest.approx(law(N), rel=1e-3)
    assert f"final≈={law(N):.3f}" in out.getvalue()


def test_an_isoflop_family_whose_gain_curves_with_tokens_per_parameter_is_forecast_exactly():
    """Runs at many tokens per parameter R (as an IsoFLOP sweep trains them): what a run still gains
    depends on ln R, curved; the forecaster fits ln R and its square once it has 12 runs."""
    law = lambda N, R: 0.9 + 60 * N ** -0.3 + 5 * (R * N) ** -0.3
    amp = lambda R: 0.2 + 0.03 * (math.log(R) - 3) ** 2
    runs = [(N, R * N, law(N, R), curve(law(N, R), R * N, amp=amp(R)))
            for N in (1e4, 3e4, 1e5) for R in (5, 15, 50, 150, 500)]
    N, R = 5e4, 80
    pts = curve(law(N, R), R * N, amp=amp(R))
    f = Forecaster(runs).forecast(N, R * N, [p for p in pts if p["tokens_seen"] <= 0.25 * R * N + 1e-6])
    assert f.loss == pytest.approx(law(N, R), rel=1e-6)
    few = Forecaster(runs[:5]).forecast(N, R * N, [p for p in pts if p["tokens_seen"] <= 0.25 * R * N + 1e-6])
    assert abs(few.loss / law(N, R) - 1) > 1e-4            # 5 runs: the straight line in ln R only


def test_a_gain_curved_in_model_size_is_fitted_once_six_sizes_are_finished():
    """As on the default ladder (the gain at 25 % peaks mid-ladder): with 6 or more finished sizes
    the forecaster fits (ln N)² and forecasts such a family exactly; with 4 it cannot."""
    law = lambda N: 0.9 + 60 * N ** -0.3
    amp = lambda N: 0.3 - 0.02 * (math.log(N) - 11) ** 2
    sizes = np.geomspace(2e4, 5e5, 8)
    runs = [(N, 20 * N, law(N), curve(law(N), 20 * N, amp=amp(N))) for N in sizes]
    N = 1.5e5
    pts = [p for p in curve(law(N), 20 * N, amp=amp(N)) if p["tokens_seen"] <= 0.25 * 20 * N + 1e-6]
    inside = Forecaster(runs).forecast(N, 20 * N, pts)
    assert inside.loss == pytest.approx(law(N), rel=1e-9) and not inside.beyond and "beyond" not in inside.words()
    assert abs(Forecaster(runs[::2]).forecast(N, 20 * N, pts).loss / law(N) - 1) > 1e-4


def test_the_benchmark_measures_a_stores_forecast_errors(tmp_path):
    """bench/forecast.py on a store of one family whose curves share their shape: every run
    forecast from the other sizes, errors near 0, the seeds it learns from and checks kept apart."""
    from bench.forecast import measure
    from lab.config import ModelConfig, RunConfig
    from lab.counting import flops_per_token, param_counts
    from lab.store import RunStore
    from lab.trackers import RunResult
    store = RunStore(tmp_path / "store")
    law = lambda N: 0.9 + 60 * N ** -0.3
    for seed in (0, 1):
        for width in (16, 24, 32, 48, 64):
            cfg = RunConfig(model=ModelConfig(width=width), tokens_per_param=20, seed=seed)
            counts, f = param_counts(cfg.model), flops_per_token(cfg.model)
            loss = law(counts.total)
            store.commit(RunResult(
                run_id=cfg.run_id, config=cfg, status="done", train_loss=loss, eval_loss=loss, eval_bpb=loss,
                tokens=cfg.tokens_trained, steps=cfg.steps, flops=float(f * cfg.tokens_trained), flops_per_token=f,
                params_total=counts.total, params_embedding=counts.embedding, params_non_embedding=counts.non_embedding,
                epochs=0.5, wall_s=1.0, first_step_s=0.5, tokens_per_s=1e5, device="cpu:test", diverged_step=None,
                unigram_loss=5.0, entropy_rate=None, dataset="builtin",
                curve=tuple(curve(loss, cfg.tokens_trained))), save_weights=False)
    out = measure(store, [0.25, 0.5], learn_seeds={0}, check_seeds={1})
    assert out["runs"] == 10 and out["learn_seeds"] == [0] and out["check_seeds"] == [1]
    for a in out["at"].values():
        assert a["n"] == 5 and a["max_abs"] < 1e-6 and {r["seed"] for r in a["rows"]} == {1}
