"""The training service: workers that take the queue's runs and train them; a page that only asks
and follows, and never imports JAX; a worker killed mid-run that loses nothing."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from store_helpers import ROOT, TINY, lab_env

from lab.runqueue import RunQueue
from lab.service import Service, default_workers
from lab.worker import default_batch
from lab.store import Asker, RunStore


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_defaults_follow_the_machine():
    assert default_workers() >= 1
    assert default_batch("cpu") < default_batch("gpu")


def test_a_thread_service_trains_queued_runs_once_in_batches_and_says_its_device(tmp_path):
    store = RunStore(tmp_path)
    queue = RunQueue(store)
    queue.set_limits(max_queued=None)
    ann, bob = Asker(client="a", name="Ann", page="pa"), Asker(client="b", name="Bob", page="pb")
    queue.ask([TINY.replace(seed=s) for s in (0, 1)], ann)                 # both asked before a worker looks,
    queue.ask([TINY.replace(seed=0), TINY.replace(seed=2)], bob)           # so one batch takes all three
    service = Service(store, workers=1, mode="thread", max_batch=4).start()
    try:
        assert queue.service()["workers"] == 1
        _wait(lambda: len(store.records()) == 3 and all(r.status == "done" for r in store.records()), 180,
              "three runs done")
    finally:
        assert service.stop() == []
    recs = {r.config.seed: r for r in store.records()}
    assert sorted(recs) == [0, 1, 2] and all(r.attempts == 1 for r in recs.values())
    assert recs[0].asked_name == "Ann" and recs[2].asked_name == "Bob"
    assert len({r.started for r in recs.values()}) == 1                    # one vmapped batch
    device = queue.setting("device")
    assert device["device"] == recs[0].result.device and device["flops_per_s"] > 0 and device["memory_bytes"] > 0
    assert queue.service() is None and queue.view().waiting == ()


def test_a_service_refuses_to_start_beside_another_live_one(tmp_path):
    store = RunStore(tmp_path)
    queue = RunQueue(store)
    queue.set_setting("service", {"owner": "elsewhere|x:1|1|-", "beat": time.time(), "workers": 1})
    from lab.config import ConfigError
    queue.set_setting("service", {"owner": f"{os.uname().nodename}|x:1|1|-", "beat": time.time(), "workers": 1})
    if queue.service() is not None:           # pid 1 lives on this host: the row names a live service
        with pytest.raises(ConfigError, match="already serves the store"):
            Service(store, workers=1, mode="thread").start()


def test_stop_requeues_a_running_run_and_a_text_sample_is_answered(tmp_path):
    store = RunStore(tmp_path)
    queue = RunQueue(store)
    long = TINY.replace(tokens=8 * 16 * 4000)
    service = Service(store, workers=1, mode="thread").start()
    try:
        queue.ask([long], Asker(client="a", page="pa"))
        _wait(lambda: store.record(long.run_id) is not None and len(store.curve_points(long.run_id)) >= 2, 120,
              "the long run to train")
    finally:
        back = service.stop()
    assert back == [long.run_id]                                           # back in the queue, not cancelled
    assert queue.view().waiting[0].run_id == long.run_id and store.record(long.run_id).status == "interrupted"
    queue.clear()
    short = TINY.replace(seed=4)
    service = Service(store, workers=1, mode="thread").start()
    try:
        queue.ask([short], Asker(client="a", page="pa"))
        _wait(lambda: (r := store.record(short.run_id)) is not None and r.status == "done", 120, "the short run")
        task = queue.submit("sample", {"run_id": short.run_id, "prompt": "def ", "length": 20, "temperature": 0.0})
        out = _wait(lambda: (t := queue.task(task))["status"] in ("done", "failed") and t, 60, "the sample")
        assert out["status"] == "done" and isinstance(out["result"], str) and out["result"]
        bad = queue.submit("sample", {"run_id": "0123456789abcdef"})
        out = _wait(lambda: (t := queue.task(bad))["status"] in ("done", "failed") and t, 60, "the refusal")
        assert out["status"] == "failed" and "no run" in out["error"]
    finally:
        service.stop()


@pytest.mark.slow
def test_a_worker_process_killed_mid_run_loses_nothing(tmp_path):
    """`scaling-lab service` with one worker process: SIGKILL the worker while it trains; the
    service starts another, the run goes back to the queue and is trained again, stored once."""
    store = RunStore(tmp_path)
    queue = RunQueue(store)
    run = TINY.replace(tokens=8 * 16 * 3000)
    proc = subprocess.Popen([sys.executable, "-m", "lab", "service", "--store", str(tmp_path), "--workers", "1"],
                            cwd=ROOT, env=lab_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        _wait(lambda: queue.service(), 60, "the service to start")
        queue.ask([run], Asker(client="a", page="pa"))
        _wait(lambda: (r := store.record(run.run_id)) is not None and r.status == "running"
              and len(store.curve_points(run.run_id)) >= 2, 180, "the run to train")
        worker = int(store.record(run.run_id).owner.split("|")[2])
        assert worker != proc.pid
        os.kill(worker, signal.SIGKILL)
        _wait(lambda: store.record(run.run_id).status == "done", 240, "the run to be trained again")
        proc.send_signal(signal.SIGTERM)                                   # the service ends cleanly
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    rec = store.record(run.run_id)
    assert rec.attempts == 2 and [r.run_id for r in store.records()] == [run.run_id]
    assert store.integrity() == "ok" and proc.returncode == 0
    assert "died; queued again" in out and "Traceback" not in out, out


PAGE = """
import asyncio, json, sys
from widgets import Lab
app = Lab(service="external")
c = app.controller
c.form.set_values(width=16, depth=1, heads=2, context=16, batch=8, tokens=4096, data="builtin")
results = asyncio.run(c.train.run())
print(json.dumps({"status": [r.status for r in results or []], "error": app.state.error,
                  "notice": app.state.notice,
                  "heavy": [m for m in ("jax", "jaxlib", "equinox", "optax") if m in sys.modules],
                  "rss_mib": int([l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")][0]) / 1024}))
"""


@pytest.mark.slow
def test_a_page_trains_through_the_service_without_importing_jax(tmp_path):
    """A fresh interpreter builds Lab() and presses Train through the controller: the service's
    worker trains, the page follows; the page never loads JAX, Equinox or optax."""
    env = dict(lab_env(), SCALING_LAB_STORE=str(tmp_path))
    service = subprocess.Popen([sys.executable, "-m", "lab", "service", "--store", str(tmp_path), "--workers", "1"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        out = subprocess.run([sys.executable, "-c", PAGE], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=300)
    finally:
        os.killpg(service.pid, signal.SIGTERM)
        service.wait(60)
    assert out.returncode == 0, out.stderr[-3000:]
    page = json.loads(out.stdout.strip().splitlines()[-1])
    assert page["status"] == ["done"] and not page["error"], page
    assert page["heavy"] == [], page
    print(f"the page's peak RSS: {page['rss_mib']:.0f} MiB")   # (ru_maxrss would count pytest's, from the fork)
