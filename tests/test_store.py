"""The run store: complete-or-absent records, dedupe, force, interrupted runs, weights, deletion, schema."""

import dataclasses
import math
import signal
import sqlite3
import threading
import time

import jax.numpy as jnp
import pytest
from store_helpers import TINY, python_process

from lab.store import (COLUMNS, LEASE_S, SCHEMA_VERSION, RunStore, StoreError, StoreTracker, check_run_id,
                       owner_alive, owner_id)
from lab.trackers import EventLog, Tracker
from lab.training import train
from lab.training import train_seeds as lab_train_seeds

pytestmark = pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")  # JAX warns on fork; the child execs at once


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A store holding one finished TINY run, and the fresh result."""
    store = RunStore(tmp_path_factory.mktemp("store"))
    return store, store.train(TINY)


def same_result(a, b):
    """Equal fields (the model aside); NaN equals NaN."""
    da, db = a.to_dict(curve=True), b.to_dict(curve=True)
    return da == db


def test_a_trained_run_is_recorded_complete(trained):
    store, result = trained
    rec = store.record(TINY.run_id, curve=True)
    assert rec.status == "done"
    assert result.status == "done"
    assert rec.attempts == 1
    assert rec.has_weights
    assert rec.error is None
    assert rec.owner is None
    assert rec.config == TINY
    assert same_result(rec.result, result)
    assert store.weights_path(TINY.run_id).exists()
    assert store.integrity() == "ok"


def test_same_config_and_seed_returns_the_stored_result_without_training(trained):
    store, result = trained
    log = EventLog()
    t0 = time.perf_counter()
    again = store.train(TINY, trackers=[log])
    assert time.perf_counter() - t0 < 1.0
    assert log.events == []
    assert log.results == []   # no training happened
    assert again.model is None                         # a stored result; weights via load_model
    assert same_result(again, result)
    assert store.record(TINY.run_id).attempts == 1


def test_force_trains_again(tmp_path):
    store = RunStore(tmp_path)
    first = store.train(TINY)
    log = EventLog()
    second = store.train(TINY, force=True, trackers=[log])
    assert log.results
    assert second.model is not None
    # a new attempt beside the finished run, which is kept as it was
    assert second.config.attempt == 1
    assert second.run_id == TINY.replace(attempt=1).run_id
    assert store.record(TINY.run_id).attempts == 1
    assert same_result(store.get(TINY.run_id), first)
    assert store.record(second.run_id).status == "done"
    assert second.eval_loss == pytest.approx(first.eval_loss, rel=1e-5)   # deterministic for one config and seed


def test_weights_round_trip_gives_identical_logits(trained):
    store, result = trained
    model = store.load_model(TINY.run_id)
    tokens = jnp.arange(TINY.model.context) % 256
    assert jnp.array_equal(model(tokens), result.model(tokens))


def test_curve_holds_every_chunk(trained):
    store, result = trained
    curve = store.curve(TINY.run_id)
    assert len(curve) == len(result.curve) >= 1
    assert {"step", "tokens_seen", "flops_seen", "train/loss", "eval/loss", "lr"} <= set(curve.columns)
    assert curve["step"].iloc[-1] == TINY.steps
    assert curve["eval/loss"].iloc[-1] == pytest.approx(result.eval_loss)


def test_table_and_finished_table(trained):
    store, result = trained
    df = store.table()
    assert tuple(df.columns) == COLUMNS
    for col in ("run_id", "status", "params_total", "params_non_embedding", "tokens", "flops", "eval_loss"):
        assert col in df.columns
    row = df[df.run_id == TINY.run_id].iloc[0]
    assert row.status == "done"
    assert row.tokens == TINY.tokens_trained
    assert row.eval_loss == result.eval_loss
    assert row.params_total == result.params_total
    assert row.flops == result.flops
    assert list(store.finished_table().run_id) == list(df[df.status.isin(["done", "diverged"])].run_id)


def test_diverged_run_is_recorded_as_such_and_kept_for_fits_to_leave_out(tmp_path):
    store = RunStore(tmp_path)
    cfg = TINY.replace(optim__lr=100.0, optim__warmup=0.0)
    result = store.train(cfg)
    assert result.status == "diverged"
    assert result.diverged_step is not None
    fin = store.finished_table()
    assert list(fin.status) == ["diverged"]
    assert store.train(cfg).status == "diverged"
    assert store.record(cfg.run_id).attempts == 1   # not retried


def _claim_and_die(store_dir, cfg, *, die: bool) -> str:
    """Python code that claims `cfg` in a child process, then is SIGKILLed (or waits for stdin)."""
    end = "os.kill(os.getpid(), signal.SIGKILL)" if die else "print('claimed', flush=True); sys.stdin.read()"
    return (f"import os, signal, sys\nfrom lab.config import RunConfig\nfrom lab.store import RunStore\n"
            f"s = RunStore({str(store_dir)!r})\ncfg = RunConfig.from_dict({cfg.to_dict()!r})\n"
            f"assert s.claims([cfg]).claimed\n{end}\n")


def test_a_killed_owner_leaves_an_interrupted_run_that_is_retrained(tmp_path):
    store = RunStore(tmp_path)
    cfg = TINY.replace(seed=7)
    child = python_process(_claim_and_die(tmp_path, cfg, die=True))
    assert child.wait(timeout=60) == -signal.SIGKILL
    rec = store.record(cfg.run_id)
    assert rec.status == "interrupted"
    assert rec.result is None
    assert rec.attempts == 1
    assert list(store.table().status) == ["interrupted"]
    assert store.reap() == [cfg.run_id]
    assert "ended before the run finished" in store.record(cfg.run_id).error
    result = store.train(cfg)
    rec = store.record(cfg.run_id)
    assert result.status == rec.status == "done"
    assert rec.attempts == 2


def test_a_run_held_by_a_live_process_is_busy_until_it_dies(tmp_path):
    store = RunStore(tmp_path)
    cfg = TINY.replace(seed=8)
    child = python_process(_claim_and_die(tmp_path, cfg, die=False))
    try:
        assert child.stdout.readline().strip() == "claimed"
        held = store.claims([cfg])
        assert held.busy == [cfg]
        assert not held.claimed
        assert store.record(cfg.run_id).status == "running"
        assert str(child.pid) in store.record(cfg.run_id).owner
        with pytest.raises(StoreError, match="being trained"):
            store.delete([cfg.run_id])
    finally:
        child.kill()
        child.wait(timeout=60)
    assert store.claims([cfg]).claimed == [cfg]
    assert store.record(cfg.run_id).attempts == 2


def test_owner_on_another_host_is_judged_by_its_heartbeat():
    other = "elsewhere|abcd1234:1|123|456|1"
    now = time.time()
    assert owner_alive(other, now - 10, now)
    assert not owner_alive(other, now - LEASE_S - 1, now)
    assert not owner_alive(None, now, now)
    assert owner_alive(owner_id(), None, now)       # this very process
    host, machine, _, _, _ = owner_id().split("|")
    if machine != "-":                               # same host, another boot: gone
        assert not owner_alive(f"{host}|ffffffff:1|1|1|1", now, now)


def test_two_threads_training_one_run_train_it_once(tmp_path):
    store = RunStore(tmp_path)
    cfg = TINY.replace(seed=9)
    results = [None, None]

    def work(i):
        results[i] = store.train(cfg)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert store.record(cfg.run_id).attempts == 1
    assert results[0].eval_loss == results[1].eval_loss


class Boom(Tracker):
    def start(self, config, info):
        raise RuntimeError("no room on the device")


def test_an_exception_in_training_is_recorded_failed_and_retried_later(tmp_path):
    store = RunStore(tmp_path)
    cfg = TINY.replace(seed=10)
    with pytest.raises(RuntimeError, match="no room"):
        store.train(cfg, trackers=[Boom()])
    rec = store.record(cfg.run_id)
    assert rec.status == "failed"
    assert "RuntimeError: no room on the device" in rec.error
    assert store.get(cfg.run_id) is None
    assert store.train(cfg).status == "done"
    assert store.record(cfg.run_id).attempts == 2


def test_store_tracker_records_a_plain_train_call_and_never_overwrites_a_finished_run(tmp_path):
    store = RunStore(tmp_path)
    cfg = TINY.replace(seed=11)
    result = train(cfg, trackers=[StoreTracker(store)])
    before = store.record(cfg.run_id, curve=True)
    with pytest.warns(UserWarning, match="already done in the store"):
        train(cfg, trackers=[StoreTracker(store, weights=False)])   # handed a finished run: left as it was
    rec = store.record(cfg.run_id, curve=True)
    assert rec.status == "done"
    assert rec.attempts == 1
    assert rec.has_weights
    assert rec.finished == before.finished
    assert rec.result.eval_loss == pytest.approx(result.eval_loss, rel=1e-5)
    assert same_result(rec.result, before.result)


def test_a_finished_run_survives_a_forced_retrain_that_is_cancelled(tmp_path):
    """Train again (the app) and `scaling-lab train --force`: a new attempt beside the run, never over it."""
    store = RunStore(tmp_path)
    cfg = TINY.replace(seed=13)
    store.train(cfg)
    before = store.record(cfg.run_id, curve=True)
    weights = store.weights_path(cfg.run_id).read_bytes()
    assert store.claims([cfg], again=True).attempt == 1
    retry = cfg.replace(attempt=1)
    assert retry.run_id != cfg.run_id
    assert store.record(retry.run_id).status == "running"
    (cancelled,) = lab_train_seeds(retry, [retry.seed], trackers=[StoreTracker(store)], cancel=lambda: True)
    assert cancelled.status == "cancelled"
    assert store.record(retry.run_id).status == "cancelled"
    after = store.record(cfg.run_id, curve=True)
    assert dataclasses.replace(after, result=None) == dataclasses.replace(before, result=None)
    assert same_result(after.result, before.result)
    assert len(after.result.curve) >= 2
    assert store.weights_path(cfg.run_id).read_bytes() == weights
    assert store.get(cfg.run_id).curve == before.result.curve


def test_attempts_get_their_own_ids_and_stay_in_the_family(tmp_path):
    from lab.family import family_key
    store = RunStore(tmp_path)
    cfg = TINY.replace(seed=14)
    assert cfg.replace(attempt=0).run_id == cfg.run_id == TINY.replace(seed=14).run_id   # ids stored before stay
    first = store.train(cfg)
    k = store.claims([cfg], again=True).attempt
    again = store.train(cfg.replace(attempt=k))                 # claimed above by this thread: trains it
    assert k == 1
    assert again.run_id != first.run_id
    assert again.config.attempt == 1
    assert store.claims([cfg], again=True).attempt == 2         # 0 and 1 are finished: the next is 2
    store.release([cfg.replace(attempt=2).run_id], status="failed", error="test")
    assert store.claims([cfg], again=True).attempt == 2         # a failed attempt is free to train again
    assert {r.run_id: r.status for r in store.records()} == {first.run_id: "done", again.run_id: "done",
                                                             cfg.replace(attempt=2).run_id: "running"}
    assert family_key(cfg) == family_key(cfg.replace(attempt=2))
    assert list(store.table().attempt) == [0, 1, 2]
    store.release([cfg.replace(attempt=2).run_id], status="failed", error="test")
    store.train(cfg.replace(seed=15, attempt=2))
    seeds = [cfg.replace(seed=s) for s in (14, 15)]             # several seeds: one attempt free for all of them
    assert store.claims(seeds, again=True).attempt == 3


def test_two_trackers_on_one_config_record_it_once(tmp_path):
    """Two threads train one config through StoreTracker at once: the first records it, the second
    is told (busy), its training is not recorded, and the record is complete."""
    store = RunStore(tmp_path)
    cfg = TINY.replace(seed=16, tokens=TINY.tokens * 4)
    gate, results = threading.Event(), {}

    class Hold(Tracker):
        def log(self, event):
            gate.wait(timeout=120)

    def first():
        results["first"] = train(cfg, trackers=[StoreTracker(store), Hold()])

    t = threading.Thread(target=first)
    t.start()
    while store.record(cfg.run_id) is None:
        time.sleep(0.05)
    assert store.claims([cfg]).busy == [cfg]
    assert store.record(cfg.run_id).status == "running"
    with pytest.warns(UserWarning, match="being trained by another process"):
        second = train(cfg, trackers=[StoreTracker(store)])
    gate.set()
    t.join(timeout=300)
    rec = store.record(cfg.run_id, curve=True)
    assert rec.status == "done"
    assert rec.attempts == 1
    assert same_result(rec.result, results["first"])
    assert second.status == "done"


def test_a_run_another_process_trains_is_followed_until_done(tmp_path):
    """`wait(on_curve=...)` hands the other process's growing curve over, then its finished record."""
    store = RunStore(tmp_path)
    cfg = TINY.replace(seed=17, tokens=TINY.tokens * 8)
    child = python_process(f"""
import sys
from lab.store import RunStore
from lab.config import RunConfig
from lab.trackers import Tracker
cfg = RunConfig.from_dict({cfg.to_dict()!r})
store = RunStore({str(tmp_path)!r})
assert store.claims([cfg]).claimed
print("claimed", flush=True)
sys.stdin.readline()
class Slow(Tracker):
    def log(self, event):
        import time; time.sleep(0.3)
store.train(cfg, trackers=[Slow()])
""")
    try:
        assert child.stdout.readline().strip() == "claimed"
        assert store.claims([cfg]).busy == [cfg]
        assert store.training_elsewhere() == 1                       # the page's "server is busy" count
        stop, seen = threading.Event(), []
        stop.set()                                                   # cancelled at once: still running
        assert store.wait(cfg.run_id, cancel=stop, on_curve=seen.append).status == "running"
        assert seen == [[]]
        child.stdin.write("go\n")
        child.stdin.flush()
        seen.clear()
        rec = store.wait(cfg.run_id, poll_s=0.05, on_curve=seen.append)
        assert child.wait(timeout=300) == 0
    finally:
        child.kill()
        child.wait(timeout=60)
    assert rec.status == "done"
    assert rec.attempts == 1
    assert store.training_elsewhere() == 0
    assert len(seen) >= 2
    assert [len(p) for p in seen] == sorted(len(p) for p in seen)   # it grew
    assert seen[-1] == store.curve_points(cfg.run_id) == list(store.get(cfg.run_id).curve)


def test_delete_removes_row_curve_and_weights(tmp_path):
    store = RunStore(tmp_path)
    cfg = TINY.replace(seed=12)
    store.train(cfg)
    path = store.weights_path(cfg.run_id)
    assert path.exists()
    assert store.delete([cfg.run_id[:6]]) == [cfg.run_id]      # a unique prefix works
    assert store.record(cfg.run_id) is None
    assert not path.exists()
    assert store._con().execute("SELECT count(*) FROM curves").fetchone()[0] == 0
    with pytest.raises(StoreError, match="no run"):
        store.delete([cfg.run_id])


def test_paths_cannot_escape_the_store(tmp_path):
    store = RunStore(tmp_path)
    for bad in ("../../etc/passwd", "..", "/etc/passwd", "ABCDEF0123456789", "0123456789abcdef/../x", ""):
        with pytest.raises(StoreError):
            store.weights_path(bad)
        with pytest.raises(StoreError):
            store.load_model(bad)
        with pytest.raises(StoreError):
            store.delete([bad])
    with pytest.raises(StoreError, match="16 hex digits"):
        check_run_id("../x")


def test_unknown_run_id_says_how_to_list_runs(tmp_path):
    store = RunStore(tmp_path)
    with pytest.raises(StoreError, match="scaling-lab runs"):
        store.resolve("abcd")
    with pytest.raises(StoreError, match="scaling-lab runs"):
        store.load_model("0123456789abcdef")
    assert store.get("0123456789abcdef") is None


def test_schema_is_versioned_and_a_newer_store_is_refused(tmp_path):
    RunStore(tmp_path)
    con = sqlite3.connect(tmp_path / "runs.sqlite")
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(StoreError, match="newer"):
        RunStore(tmp_path)


def test_store_location_default_env_and_bad_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALING_LAB_STORE", str(tmp_path / "env-store"))
    store = RunStore(None)
    assert store.path == tmp_path / "env-store"
    assert (store.path / "runs.sqlite").exists()
    assert (store.path / "weights").is_dir()
    text = tmp_path / "notes.txt"
    text.write_text("not a database " * 100)
    with pytest.raises(StoreError):
        RunStore(text)
    with pytest.raises(StoreError, match="not a folder"):
        RunStore(text / "sub")


def test_nan_losses_round_trip(tmp_path):
    store = RunStore(tmp_path)
    cfg = TINY.replace(seed=13)
    result = train(cfg)
    broken = type(result)(**{**{f: getattr(result, f) for f in result.__dataclass_fields__},
                             "train_loss": math.nan, "status": "diverged", "diverged_step": 3})
    store.claim(cfg)
    store.commit(broken, save_weights=False)
    back = store.get(cfg.run_id)
    assert math.isnan(back.train_loss)
    assert back.status == "diverged"
    assert back.diverged_step == 3


def test_a_heartbeat_keeps_held_runs_fresh(tmp_path, monkeypatch):
    monkeypatch.setattr("lab.liveness.HEARTBEAT_S", 0.05)
    store = RunStore(tmp_path)
    cfg = TINY.replace(seed=14)
    assert store.claims([cfg]).claimed == [cfg]

    def beat():
        return store._con().execute("SELECT heartbeat FROM runs WHERE run_id = ?", (cfg.run_id,)).fetchone()[0]

    first = beat()
    deadline = time.time() + 10
    while beat() == first and time.time() < deadline:
        time.sleep(0.05)
    assert beat() > first
    store.release([cfg.run_id], status="interrupted", error="test over")
    assert store.record(cfg.run_id).status == "interrupted"


def test_processes_opening_one_new_store_at_once_all_get_it(tmp_path):
    """Two sweeps started together on a fresh store once failed with "database is locked":
    the switch to WAL got no busy wait. Eight processes open each of 40 new stores at once."""
    child = python_process(f"""
import multiprocessing as mp
from lab.store import RunStore
def open_store(path, errors):
    try:
        RunStore(path)
    except Exception as e:
        errors.put(repr(e))
if __name__ == "__main__":
    ctx = mp.get_context("fork")
    errors = ctx.Queue()
    for trial in range(40):
        procs = [ctx.Process(target=open_store, args=({str(tmp_path)!r} + f"/s{{trial}}", errors)) for _ in range(8)]
        [p.start() for p in procs]
        [p.join() for p in procs]
        assert all(p.exitcode == 0 for p in procs)
    print("errors:", errors.get(timeout=1) if not errors.empty() else "none", flush=True)
""")
    out, _ = child.communicate(timeout=300)
    assert child.returncode == 0, out
    assert out.strip() == "errors: none", out
    assert all(RunStore(tmp_path / f"s{i}").integrity() == "ok" for i in range(40))


# Stored weights are the model's leaves in order (lab.weights: eqx.tree_serialise_leaves), so the
# order of every model's fields is part of the store's format: what each was written in since
# the first stored runs (the MLP's five leaves were the blocks' own last five fields before
# lab.models.MLP held them; the order, and so every stored file, is unchanged).
LEAVES = {
    "gpt": ["tok_emb", "pos_emb", "ln1.scale", "ln1.bias", "w_qkv", "b_qkv", "w_out", "b_out", "mlp.ln.scale",
            "mlp.ln.bias", "mlp.w_up", "mlp.b_up", "mlp.w_down", "mlp.b_down", "ln_f.scale", "ln_f.bias", "head"],
    "cnn": ["tok_emb", "ln1.scale", "ln1.bias", "w_conv", "b_conv", "mlp.ln.scale", "mlp.ln.bias", "mlp.w_up",
            "mlp.b_up", "mlp.w_down", "mlp.b_down", "ln_f.scale", "ln_f.bias", "head"],
    "lstm": ["tok_emb", "weight_ih", "weight_hh", "bias", "head", "head_bias"],
}


@pytest.mark.parametrize("arch", sorted(LEAVES))
def test_the_weights_are_stored_in_the_order_every_stored_run_was_written_in(arch):
    import equinox as eqx
    import jax
    import jax.random as jr

    from lab.config import ModelConfig
    from lab.models import make_model
    model = make_model(ModelConfig(arch=arch, width=8, depth=1, heads=2, context=4), key=jr.PRNGKey(0))
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(eqx.filter(model, eqx.is_array))[0]]
    names = [p.split("]", 1)[1].lstrip(".") if "]" in p else p.lstrip(".") for p in paths]
    assert names == LEAVES[arch]
