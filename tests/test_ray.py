"""The Ray executor gives the same records as the in-process one (a local Ray with two CPUs)."""

import pytest
from store_helpers import ROOT, TINY

from lab.executors import RayExecutor
from lab.plans import grid
from lab.store import RunStore
from lab.sweep import run_sweep

ray = pytest.importorskip("ray")

pytestmark = [pytest.mark.ray, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")]  # ray.init forks; JAX warns


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    yield
    ray.shutdown()


def test_ray_sweep_matches_the_in_process_sweep(tmp_path, local_ray):
    plan = grid(TINY, tokens=[4096, 8192], seeds=[0, 1])
    local_store = RunStore(tmp_path / "local")
    local = run_sweep(plan, local_store)
    ray_store = RunStore(tmp_path / "ray")
    remote = run_sweep(plan, ray_store, executor=RayExecutor())
    assert local.ok
    assert remote.ok
    assert len(remote.trained) == 4
    assert [r.run_id for r in remote.records] == [r.run_id for r in local.records] == list(plan.run_ids)
    for a, b in zip(local.records, remote.records):
        assert a.status == b.status == "done"
        assert b.attempts == 1
        assert b.result.eval_loss == pytest.approx(a.result.eval_loss, rel=1e-5, abs=1e-6)
        assert b.result.train_loss == pytest.approx(a.result.train_loss, rel=1e-5, abs=1e-6)
        assert b.result.tokens == a.result.tokens
        assert b.result.flops == a.result.flops
        curve_a, curve_b = local_store.curve(a.run_id), ray_store.curve(b.run_id)
        assert list(curve_b["step"]) == list(curve_a["step"])
        assert curve_b["train/loss"].to_numpy() == pytest.approx(curve_a["train/loss"].to_numpy(), rel=1e-5)
        assert ray_store.load_model(b.run_id) is not None
    assert ray_store.integrity() == "ok"

    again = run_sweep(plan, ray_store, executor=RayExecutor())        # resume: nothing left to train
    assert again.trained == ()
    assert again.ok

    broken = grid(TINY.replace(data__source="file", data__path=str(tmp_path / "missing.txt")))
    report = run_sweep(broken, ray_store, executor=RayExecutor())      # an error inside a task
    (rec,) = report.records
    assert rec.status == "failed"
    assert "does not exist" in rec.error
    assert not report.ok
