"""Sweep plans, the in-process executor, resume after kill -9, and two processes sharing one store."""

import json
import math
import os
import re
import signal
import threading
import time

import pytest
from store_helpers import TINY, TINY_ARGS, lab_process, statuses

from lab.config import ConfigError
from lab.counting import flops_per_token, param_counts, run_flops
from lab.executors import LocalExecutor
from lab.plans import Plan, aspect_depth, grid, isoflop
from lab.store import RunStore
from lab.sweep import SweepTracker, plan_estimate, plan_summary, run_sweep
from lab.trackers import Tracker
from lab.training import train

pytestmark = pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")  # JAX warns on fork; the child execs at once


# --- plans -----------------------------------------------------------------------------------

def test_grid_is_the_full_product_with_seeds_innermost():
    plan = grid(TINY, widths=[16, 32], depths=[1, 2], tokens=[4096, 8192], lrs=[1e-3, 3e-3], seeds=[0, 1, 1])
    assert len(plan) == 2 * 2 * 2 * 2 * 2
    assert len(set(plan.run_ids)) == len(plan)
    assert plan.shapes == 4                          # width x depth; lr, tokens and seed are data
    assert [c.seed for c in plan.configs[:4]] == [0, 1, 0, 1]
    assert all(len(g) == 2 for g in plan.groups())   # each group: the seeds of one config
    assert plan.total_flops == sum(run_flops(c) for c in plan.configs)
    assert grid(TINY).configs == (TINY,)


def test_grid_errors_name_the_point_and_the_fix():
    with pytest.raises(ConfigError, match="widths is empty"):
        grid(TINY, widths=[])
    with pytest.raises(ConfigError, match="width=15.*divisible by heads"):
        grid(TINY, widths=[16, 15])
    with pytest.raises(ConfigError, match="unknown optimizer"):
        grid(TINY, optimizers=["adamw", "adamx"])


def test_isoflop_sets_tokens_from_the_budget_and_refuses_sizes_below_one_batch():
    budgets = [2e9, 8e9]
    plan = isoflop(TINY, budgets, widths=[16, 32, 512])
    per_step = TINY.tokens_per_step
    for c, budget in zip(plan.configs, plan.budgets):
        fpt = flops_per_token(c.model)
        assert c.tokens % per_step == 0
        assert c.tokens == c.tokens_trained
        assert abs(run_flops(c) - budget) <= fpt * per_step / 2          # C up to half a batch
    assert {(c.model.width, b) for c, b in zip(plan.configs, plan.budgets)} == {(16, 2e9), (32, 2e9), (16, 8e9),
                                                                                 (32, 8e9), (512, 8e9)}
    assert len(plan.refused) == 1
    assert "width 512" in plan.refused[0]
    assert "less than one batch" in plan.refused[0]
    assert "C=2e+09" in plan_summary(plan)


def test_isoflop_sizes_around_the_chinchilla_optimum_and_a_depth_rule():
    plan = isoflop(TINY, [1e11], n_sizes=3, depth=aspect_depth(16))
    ns = [param_counts(c.model).total for c in plan.configs]
    assert len(ns) == 3
    assert ns == sorted(ns)
    n_opt = math.sqrt(1e11 / 120)
    assert ns[0] < n_opt < ns[-1]
    assert all(c.model.depth == max(1, round(c.model.width / 16)) for c in plan.configs)
    with pytest.raises(ConfigError, match="either widths"):
        isoflop(TINY, [1e11])
    with pytest.raises(ConfigError, match="positive"):
        isoflop(TINY, [-1.0], widths=[16])
    with pytest.raises(ConfigError, match="at least one batch"):
        isoflop(TINY, [1e3], widths=[16])


def test_plan_summary_states_runs_flops_and_time(tmp_path):
    plan = grid(TINY, tokens=[4096, 8192])
    text = plan_summary(plan)
    assert "2 runs" in text
    assert f"{plan.total_flops:.3g}" in text
    assert "estimated time" in text
    est = plan_estimate(plan)
    assert est.runs == 2
    assert est.done == 0
    assert est.seconds > 0
    assert "probe" in est.source
    store = RunStore(tmp_path)
    run_sweep(grid(TINY), store)
    est = plan_estimate(plan, store)                     # TINY is done; its shape's speed is known now
    assert est.done == 1
    assert est.runs == 1
    assert "past runs" in est.source
    assert "1 already finished" in plan_summary(plan, store)
    with pytest.raises(ConfigError, match="same run twice"):
        Plan(configs=(TINY, TINY))


# --- the in-process executor -------------------------------------------------------------------

class Recorder(SweepTracker):
    def __init__(self):
        self.calls = []
        self.events = 0

    def sweep_start(self, plan, todo):
        self.calls.append(("start", len(plan), todo))

    def log(self, event):
        self.events += 1

    def run_end(self, record, ended, total):
        self.calls.append(("end", record.run_id, record.status, ended, total))

    def sweep_end(self, report):
        self.calls.append(("stop", len(report.records)))


def test_sweep_trains_once_then_resumes_by_skipping_done_runs(tmp_path):
    store = RunStore(tmp_path)
    plan = grid(TINY, tokens=[4096, 8192], seeds=[0, 1])
    rec = Recorder()
    report = run_sweep(plan, store, trackers=[rec])
    assert report.ok
    assert len(report.trained) == 4
    assert report.reused == ()
    assert [r.run_id for r in report.records] == list(plan.run_ids)
    assert rec.calls[0] == ("start", 4, 4)
    assert rec.calls[-1] == ("stop", 4)
    assert [c[3] for c in rec.calls[1:-1]] == [1, 2, 3, 4]
    assert rec.events >= 4
    assert all(store.record(i).attempts == 1 for i in plan.run_ids)
    # seeds trained together through vmap give the single run's result
    alone = train(plan.configs[1])
    assert report.records[1].result.eval_loss == pytest.approx(alone.eval_loss, rel=1e-4)

    again = run_sweep(plan, store, trackers=[rec := Recorder()])
    assert again.trained == ()
    assert set(again.reused) == set(plan.run_ids)
    assert rec.events == 0
    assert rec.calls[0] == ("start", 4, 0)
    assert [r.result.eval_loss for r in again.records] == [r.result.eval_loss for r in report.records]
    # forced: trained again as new attempts beside the finished runs, which stay as they were
    kept, when = store.get(TINY.run_id), store.record(TINY.run_id).finished
    forced = run_sweep(grid(TINY), store, force=True)
    assert forced.trained == (TINY.replace(attempt=1).run_id,)
    assert store.record(TINY.run_id).attempts == 1
    assert store.get(TINY.run_id).eval_loss == kept.eval_loss
    assert store.record(TINY.run_id).finished == when
    assert run_sweep(grid(TINY), store, force=True).trained == (TINY.replace(attempt=2).run_id,)


class FailFor(Tracker):
    def __init__(self, run_id):
        self.run_id = run_id

    def start(self, config, info):
        if config.run_id == self.run_id:
            raise RuntimeError("simulated failure")


def test_a_failing_run_is_recorded_and_the_sweep_goes_on_and_a_diverged_run_is_final(tmp_path):
    store = RunStore(tmp_path)
    base = TINY.replace(optim__warmup=0.0)
    plan = grid(base, lrs=[3e-3, 100.0], tokens=[4096, 8192])
    failing = plan.configs[1].run_id                       # lr 3e-3, 8192 tokens
    report = run_sweep(plan, store, executor=LocalExecutor(max_seeds=1), trackers=[FailFor(failing)])
    by_id = {r.run_id: r for r in report.records}
    assert by_id[failing].status == "failed"
    assert "RuntimeError: simulated failure" in by_id[failing].error
    assert by_id[plan.configs[0].run_id].status == "done"
    assert {by_id[c.run_id].status for c in plan.configs[2:]} == {"diverged"}
    assert not report.ok
    assert "simulated failure" in report.summary()

    resumed = run_sweep(plan, store)
    assert resumed.trained == (failing,)
    assert resumed.ok   # failed retried; diverged not retried
    assert store.record(failing).attempts == 2
    assert all(store.record(c.run_id).attempts == 1 for c in plan.configs[2:])


class CancelAfterFirstEvent(Tracker):
    def __init__(self, flag):
        self.flag = flag

    def log(self, event):
        self.flag.set()


def test_cancel_stops_the_sweep_and_resume_finishes_it(tmp_path):
    store = RunStore(tmp_path)
    plan = grid(TINY, tokens=[4096, 8192], seeds=[0, 1])
    flag = threading.Event()
    report = run_sweep(plan, store, trackers=[CancelAfterFirstEvent(flag)], cancel=flag)
    assert report.cancelled
    assert not report.ok
    assert len(report.missing) >= 2
    assert store.record(plan.configs[-1].run_id) is None      # not reached: not even claimed
    resumed = run_sweep(plan, store)
    assert resumed.ok
    assert len(resumed.trained) == 4 - sum(r.status == "done" for r in report.records)


class CtrlC(Tracker):
    def log(self, event):
        raise KeyboardInterrupt


def test_ctrl_c_gives_the_claims_back_as_interrupted(tmp_path):
    store = RunStore(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(grid(TINY, seeds=[0, 1]), store, trackers=[CtrlC()])
    recs = store.records()
    assert [r.status for r in recs] == ["interrupted", "interrupted"]
    assert all("interrupted" in r.error for r in recs)
    assert run_sweep(grid(TINY, seeds=[0, 1]), store).ok


def test_a_missing_data_file_fails_before_anything_is_claimed(tmp_path):
    store = RunStore(tmp_path / "store")
    plan = grid(TINY.replace(data__source="file", data__path=str(tmp_path / "nope.txt")))
    with pytest.raises(ConfigError, match="does not exist"):
        run_sweep(plan, store)
    assert store.records() == []


# --- crash and concurrency across processes -----------------------------------------------------

def _wait_for(pred, timeout, what, proc=None):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the sweep ended (rc {proc.returncode}) before {what}:\n{err[-3000:]}")
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.slow
def test_sigkill_mid_sweep_then_resume_trains_every_run_exactly_once(tmp_path):
    store_dir = tmp_path / "store"
    # the second run is long enough (1600 steps) to be caught while training
    args = ["sweep", *TINY_ARGS, "--tokens", "4096,204800", "--store", store_dir, "--json", "--quiet"]
    plan = grid(TINY, tokens=[4096, 204800])
    first, second = plan.run_ids
    proc = lab_process(*args)
    try:
        _wait_for(lambda: statuses(store_dir).get(first) == "done" and statuses(store_dir).get(second) == "running",
                  240, "one run done and another running", proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    store = RunStore(store_dir)
    assert store.integrity() == "ok"
    assert {r.run_id: r.status for r in store.records()} == {first: "done", second: "interrupted"}
    assert store.get(second) is None
    assert not store.weights_path(second).exists()

    resume = lab_process(*args)
    out, err = resume.communicate(timeout=600)
    assert resume.returncode == 0, err[-3000:]
    records = json.loads(out)
    assert [r["run_id"] for r in records] == [first, second]
    assert all(r["status"] == "done" for r in records)
    recs = {r.run_id: r for r in store.records()}
    assert len(recs) == 2
    assert recs[first].attempts == 1
    assert recs[second].attempts == 2
    assert store.curve(second)["step"].iloc[-1] == plan.configs[1].steps
    assert store.load_model(second) is not None
    assert store.integrity() == "ok"


@pytest.mark.slow
def test_two_processes_on_one_store_train_every_run_exactly_once(tmp_path):
    store_dir = tmp_path / "store"
    common = ["sweep", *TINY_ARGS, "--seeds", "0,1", "--store", store_dir, "--json", "--max-seeds", "1"]
    a = lab_process(*common, "--tokens", "4096,8192,12288")
    b = lab_process(*common, "--tokens", "8192,12288,16384")
    out_a, err_a = a.communicate(timeout=600)
    out_b, err_b = b.communicate(timeout=600)
    assert a.returncode == 0, err_a[-3000:]
    assert b.returncode == 0, err_b[-3000:]
    rec_a, rec_b = json.loads(out_a), json.loads(out_b)
    union = set(grid(TINY, tokens=[4096, 8192, 12288, 16384], seeds=[0, 1]).run_ids)
    assert len(rec_a) == len(rec_b) == 6
    store = RunStore(store_dir)
    records = store.records()
    assert {r.run_id for r in records} == union
    assert len(records) == 8
    assert all(r.status == "done" and r.attempts == 1 for r in records)      # nothing trained twice
    # both processes report the same numbers for the runs they share
    loss_a = {r["run_id"]: r["eval_loss"] for r in rec_a}
    assert all(loss_a[r["run_id"]] == r["eval_loss"] for r in rec_b if r["run_id"] in loss_a)
    assert store.integrity() == "ok"
    # each process says what it trained and what it found finished (or waited for): 8 trained in all
    counts = [re.search(r"trained (\d+), reused (\d+)", err).groups() for err in (err_a, err_b)]
    assert sum(int(t) for t, _ in counts) == 8
    assert sum(int(r) for _, r in counts) == 4
