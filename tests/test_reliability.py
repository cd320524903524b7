"""System-level faults: divergence for every optimizer, a training process killed mid-run, bad fit
inputs and uploaded files. Every case ends in a clear error or a valid result, and nothing finished
is lost."""

import math
import os
import signal
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import tiny
from lab.config import OPTIMIZERS, ConfigError, DataConfig
from lab.data import load_dataset
from store_helpers import lab_process, statuses


@pytest.mark.slow
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_far_too_high_learning_rates_diverge_for_every_optimizer(name):
    from lab.training import train
    r = train(tiny(optim__name=name, optim__lr=100.0, optim__warmup=0.0, optim__clip=0.0, tokens=8 * 32 * 40))
    assert r.status == "diverged", (name, r.eval_loss)
    assert r.diverged_step is not None
    assert 0 <= r.diverged_step < r.config.steps
    assert math.isfinite(r.eval_loss)        # the last good weights were evaluated and kept


def test_fits_leave_diverged_runs_out_and_say_so(tmp_path, capsys):
    from lab.cli import main
    from lab.store import RunStore
    store = RunStore(tmp_path / "s")
    for w in (16, 24, 32, 48):
        store.train(tiny(model__width=w))
    store.train(tiny(model__width=40, optim__name="sgd", optim__lr=90.0, optim__warmup=0.0, optim__clip=0.0))
    assert "diverged" in set(store.table().status)
    code = main(["fit", "--store", str(tmp_path / "s"), "--law", "kaplan-n", "--json"])
    import json
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["left_out"] == 1
    assert out["n_points"] == 4


@pytest.mark.slow
def test_sigkill_of_a_training_process_loses_nothing(tmp_path):
    store_dir = tmp_path / "store"
    done = lab_process("train", "--width", "16", "--depth", "1", "--heads", "2", "--context", "16", "--batch", "8",
                       "--tokens", "4096", "--store", store_dir, "--quiet")
    assert done.wait(timeout=300) == 0, done.stderr.read()
    victim = lab_process("train", "--width", "32", "--depth", "2", "--heads", "2", "--context", "64", "--batch", "16",
                         "--tokens", "5e6", "--store", store_dir, "--quiet")
    deadline = time.time() + 240
    while time.time() < deadline and "running" not in statuses(store_dir).values():
        time.sleep(0.5)
    assert "running" in statuses(store_dir).values()
    time.sleep(2)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    from lab.store import RunStore
    store = RunStore(store_dir)
    assert store.integrity() == "ok"
    table = store.table().set_index("width")
    assert table.loc[16, "status"] == "done"               # the finished run is intact
    assert table.loc[32, "status"] == "interrupted"        # the killed one is found as such: resumable


finite = st.floats(min_value=1e-300, max_value=1e300, allow_nan=False)
anything = st.one_of(finite, st.just(0.0), st.just(-1.0), st.just(float("nan")), st.just(float("inf")),
                     st.just(-float("inf")), st.floats(allow_nan=True, allow_infinity=True))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(anything, anything, anything), min_size=0, max_size=12))
def test_fit_inputs_give_a_result_or_a_clear_error(rows):
    from lab.fit import fit_chinchilla, fit_power_law
    N, D, L = (np.array([r[i] for r in rows], float) for i in range(3))
    for fit in (lambda: fit_power_law(N, L), lambda: fit_chinchilla(N, D, L)):
        try:
            res = fit()
        except ValueError as e:
            assert str(e)
            assert len(str(e)) < 600
        else:
            assert isinstance(res.converged, bool)
            assert res.message
            assert all(math.isfinite(v) for v in (res.E, res.A, res.alpha))


@pytest.mark.parametrize("rows, refused", [
    ([(1e6, 1e9, 3.0)] * 8, "loss is constant"),                           # duplicated points
    ([(1e6, 1e9, 3.0), (1e6, 1e9, 3.1)] * 4, "N takes a single value"),     # one size, the loss varying
    ([(1e6, 1e9, 3.0), (2e6, 1e9, 2.9)] * 4, "D takes a single value"),     # one data size
    ([(10.0 ** k, 1e9, 2.5) for k in range(5, 12)], "loss is constant"),   # constant loss
    ([(1e300, 1e300, 1e-300), (1e-300, 1e-300, 1e300)] * 3, None),         # absurd magnitudes: a result
])
def test_degenerate_fit_inputs(rows, refused):
    from lab.fit import fit_chinchilla
    N, D, L = (np.array([r[i] for r in rows], float) for i in range(3))
    if refused:
        with pytest.raises(ValueError, match=refused):
            fit_chinchilla(N, D, L)
        return
    res = fit_chinchilla(N, D, L)
    assert isinstance(res.converged, bool)
    assert all(math.isfinite(v) for v in (res.E, res.A, res.B, res.alpha, res.beta)), res
    assert "L-BFGS-B" in res.message, res.message                # the optimizer's own words for why it stopped


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=6000))
def test_uploaded_bytes_load_or_are_refused_clearly(tmp_path, content):
    path = tmp_path / "upload.txt"
    path.write_bytes(content)
    try:
        ds = load_dataset(DataConfig(source="file", path=str(path)))
    except ConfigError as e:
        assert str(path) in str(e)
    else:
        assert len(ds.train) + len(ds.val) == len(content)
        assert content.decode("utf-8")


def test_a_huge_upload_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.txt"
    with open(path, "wb") as f:                     # sparse: 1 GiB + 1 byte that take no disk space
        f.truncate((1 << 30) + 1)
    with pytest.raises(ConfigError, match="over the 1 GiB limit"):
        load_dataset(DataConfig(source="file", path=str(path)))
