"""The queue of the training service (lab.runqueue), on the store alone: fairness, sharing, limits,
withdrawal, requeueing, who may delete what. No training here (claims are made and released by
hand), so every test takes milliseconds."""

import os
import signal
import subprocess
import sys

import pytest
from store_helpers import TINY

from lab.runqueue import LimitError, RunQueue, batch_key, starts
from lab.store import Asker, RunStore, StoreError


def _asker(name: str, *, client: str | None = None, page: str | None = None, role: str = "student") -> Asker:
    return Asker(client=client or f"client-{name}", name=name, role=role, page=page or f"page-{name}")


@pytest.fixture
def queue(tmp_path):
    return RunQueue(RunStore(tmp_path))


def test_round_robin_by_browser_nobodys_second_run_before_everyones_first(queue):
    queue.set_limits(max_queued=None)
    ann, bob, cyd = _asker("Ann"), _asker("Bob"), _asker("Cyd")
    queue.ask([TINY.replace(seed=s) for s in (0, 1, 2)], ann)              # Ann asks first, for three runs
    queue.ask([TINY.replace(seed=s) for s in (10, 11)], bob)
    queue.ask([TINY.replace(seed=20)], cyd)
    order = [(w.askers[0].name, w.config.seed) for w in queue.view().waiting]
    assert order == [("Ann", 0), ("Bob", 10), ("Cyd", 20), ("Ann", 1), ("Bob", 11), ("Ann", 2)]
    assert [w.place for w in queue.view().waiting] == [1, 2, 3, 4, 5, 6]


def test_tabs_of_one_browser_share_its_turns(queue):
    queue.set_limits(max_queued=None)
    tab1, tab2 = _asker("Ann", client="same", page="tab1"), _asker("Ann", client="same", page="tab2")
    queue.ask([TINY.replace(seed=0)], tab1)
    queue.ask([TINY.replace(seed=1)], tab2)                                 # a second tab: the same visitor
    queue.ask([TINY.replace(seed=5)], _asker("Bob"))
    assert [w.config.seed for w in queue.view().waiting] == [0, 5, 1]


def test_a_config_asked_by_many_pages_is_one_entry_trained_once(queue):
    pages = [_asker(f"s{i}") for i in range(5)]
    first = queue.ask([TINY], pages[0])
    later = [queue.ask([TINY], p) for p in pages[1:]]
    assert first.joined == ()
    assert all(a.joined == (TINY.run_id,) for a in later)
    (entry,) = queue.view().waiting
    assert [a.name for a in entry.askers] == [f"s{i}" for i in range(5)]
    held = queue.claim_next(4)
    assert [c.run_id for c in held.claimed] == [TINY.run_id]
    assert queue.claim_next(4) is None
    again = queue.ask([TINY], _asker("late"))                                # asked while it trains: follows it
    assert again.running == (TINY.run_id,)
    assert again.joined == (TINY.run_id,)
    assert len(queue.view().training[0].askers) == 6


def test_the_head_of_the_queue_takes_its_batch_with_it(queue):
    queue.set_limits(max_queued=None)
    queue.ask([TINY.replace(seed=0)], _asker("Ann"))
    queue.ask([TINY.replace(optim__lr=1e-3)], _asker("Bob"))              # another config: another batch
    queue.ask([TINY.replace(seed=s) for s in (1, 2, 3, 4)], _asker("Cyd"))
    held = queue.claim_next(3)
    assert [c.seed for c in held.claimed] == [0, 1, 2]                    # Ann's, with two of Cyd's seeds
    assert len({batch_key(c) for c in held.claimed}) == 1
    assert [w.config.optim.lr for w in queue.view().waiting][0] == 1e-3   # Bob's run is next


def test_limits_refuse_before_anything_is_queued_and_the_teacher_has_none(queue):
    queue.set_limits(max_queued=2, max_tokens=3000)
    ann = _asker("Ann")
    with pytest.raises(LimitError, match="over the class's limit of 3,000 tokens"):
        queue.ask([TINY], ann)                                             # 4,096 tokens
    small = TINY.replace(tokens=2048)
    queue.ask([small.replace(seed=0), small.replace(seed=1)], ann)
    with pytest.raises(LimitError, match="may have 2 run"):
        queue.ask([small.replace(seed=2)], ann)
    assert len(queue.view().waiting) == 2
    teacher = _asker("Teach", role="teacher")
    queue.ask([TINY.replace(seed=s) for s in range(5)], teacher)          # no limit for the teacher
    assert len(queue.view().waiting) == 7
    with pytest.raises(StoreError, match="whole number"):
        queue.set_limits(max_queued=0)
    with pytest.raises(StoreError, match="unknown limit"):
        queue.set_limits(max_runs=3)


def test_the_service_refuses_a_run_over_the_limit_that_a_page_slipped_in(queue):
    queue.ask([TINY], _asker("Ann"))
    queue.set_limits(max_tokens=1000)                                      # the teacher lowers the limit
    held = queue.claim_next(4)
    assert held.claimed == []
    rec = queue.store.record(TINY.run_id)
    assert rec.status == "failed"
    assert "limit of 1,000" in rec.error
    assert rec.asked_name == "Ann"


def test_stop_withdraws_a_queued_run_cancels_a_running_one_and_spares_a_shared_one(queue):
    queue.set_limits(max_queued=None)
    ann, bob = _asker("Ann"), _asker("Bob")
    a, b, shared = TINY.replace(seed=1), TINY.replace(seed=2), TINY.replace(seed=3)
    queue.ask([a, shared], ann)
    queue.ask([b, shared], bob)
    held = queue.claim_next(1)                                             # Ann's first run trains
    assert [c.run_id for c in held.claimed] == [a.run_id]
    out = queue.withdraw(None, ann.page)
    assert out == {a.run_id: "cancelling", shared.run_id: "others"}       # Bob still waits for the shared one
    assert queue.cancelled([a.run_id])                                     # its worker stops it
    assert queue.withdraw([b.run_id], bob.page) == {b.run_id: "dropped"}
    assert [w.run_id for w in queue.view().waiting] == [shared.run_id]
    again = queue.ask([a], _asker("Cyd"))                                  # someone asks while it stops: it goes on
    assert again.running == (a.run_id,)
    assert not queue.cancelled([a.run_id])


def test_a_stopping_worker_puts_its_runs_back_and_they_keep_their_turn(queue):
    queue.set_limits(max_queued=None)
    ann, bob = _asker("Ann"), _asker("Bob")
    queue.ask([TINY.replace(seed=0)], ann)
    queue.ask([TINY.replace(seed=9)], bob)
    held = queue.claim_next(1)
    queue.store.log_point(held.claimed[0].run_id, {"step": 3, "train/loss": 4.0})
    assert queue.requeue(held.run_ids) == held.run_ids
    assert [w.config.seed for w in queue.view().waiting] == [0, 9]         # Ann's run is first again
    rec = queue.store.record(held.run_ids[0])
    assert rec.status == "interrupted"
    assert queue.store.curve_points(rec.run_id) == []


def _hold_then_die(store_dir) -> subprocess.Popen:
    """A worker process that claims the head of the queue and is then SIGKILLed."""
    code = ("import os, signal\nfrom lab.runqueue import RunQueue\nfrom lab.store import RunStore\n"
            f"q = RunQueue(RunStore({str(store_dir)!r}))\nassert q.claim_next(1).claimed\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    return subprocess.Popen([sys.executable, "-c", code])


def test_a_killed_workers_run_goes_back_to_the_queue_at_most_three_times(tmp_path):
    queue = RunQueue(RunStore(tmp_path))
    queue.ask([TINY], _asker("Ann"))
    for attempt in (1, 2):
        assert _hold_then_die(tmp_path).wait(60) == -signal.SIGKILL
        done = queue.reap()
        assert done["requeued"] == [TINY.run_id], attempt
        assert queue.view().waiting[0].run_id == TINY.run_id
    assert _hold_then_die(tmp_path).wait(60) == -signal.SIGKILL
    assert queue.reap()["failed"] == [TINY.run_id]                       # the third death: failed, not queued
    rec = queue.store.record(TINY.run_id)
    assert rec.status == "failed"
    assert rec.error.splitlines()[0] == "its worker died 3 times while training it (out of memory?); not queued again"
    from lab import i18n
    from lab.schema import spell_error
    try:                                                                  # a Chinese page reads it in Chinese
        i18n.use("zh")
        assert spell_error(rec.error) == "训练它的工作进程已崩溃 3 次（内存不足？）；不再排队"
    finally:
        i18n.use("en")
    assert queue.view().waiting == ()
    assert queue.store.integrity() == "ok"


def test_a_page_whose_kernel_died_leaves_the_queue(tmp_path):
    queue = RunQueue(RunStore(tmp_path))
    code = ("import os, signal\nfrom lab.runqueue import RunQueue\nfrom lab.store import Asker, RunStore\n"
            "from lab.config import RunConfig\n"
            f"q = RunQueue(RunStore({str(tmp_path)!r}))\na = Asker(client='c', name='Gone', page='p-gone')\n"
            f"q.open_page(a)\nq.ask([RunConfig.from_dict({TINY.to_dict()!r})], a)\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    assert subprocess.run([sys.executable, "-c", code]).returncode == -signal.SIGKILL
    assert len(queue.view().waiting) == 1
    done = queue.reap()
    assert done["pages_gone"] == ["p-gone"]
    assert queue.view().waiting == ()
    assert queue.pages(present=False) == []


def test_estimated_starts_follow_the_workers_and_the_order():
    from lab.runqueue import QueueView, Training, Waiting
    run = TINY                                                             # 32 steps; say 10 s a run
    view = QueueView(training=(Training(run_id="a" * 16, config=run, owner="", started=0.0, askers=(), step=16),),
                     waiting=tuple(Waiting(run_id=str(i) * 16, config=run, place=i, queued=0.0, askers=())
                                   for i in (1, 2, 3)), workers=2)
    eta = starts(view, lambda cfg: 10.0)
    assert eta == {"1" * 16: 0.0, "2" * 16: 5.0, "3" * 16: 10.0}         # a free worker, then the half-done run


def test_students_delete_only_their_own_runs_the_teacher_any(tmp_path):
    store = RunStore(tmp_path)
    queue = RunQueue(store)
    ann, bob, teacher = _asker("Ann"), _asker("Bob"), _asker("Teach", role="teacher")
    queue.ask([TINY.replace(seed=0)], ann)
    queue.ask([TINY.replace(seed=1)], teacher)
    for held in (queue.claim_next(1), queue.claim_next(1)):
        held.give_back(RuntimeError("not trained in this test"))           # failed rows, with their askers
    ids = {r.config.seed: r.run_id for r in store.records()}
    with pytest.raises(StoreError, match="asked for by the teacher"):
        store.delete([ids[1]], asker=bob)
    with pytest.raises(StoreError, match="asked for by Ann"):
        store.delete([ids[0]], asker=bob)
    assert store.delete([ids[0]], asker=ann) == [ids[0]]
    assert store.delete([ids[1]], asker=teacher) == [ids[1]]
    assert store.records() == []


def test_names_are_cleaned_and_bounded():
    a = Asker(client="c1", name="  <script>alert(1)</script>\n\t Ann " + "x" * 80)
    assert a.name.startswith("<script>alert(1)</script> Ann")
    assert len(a.name) == 40
    assert "\n" not in a.name
    with pytest.raises(StoreError, match="role"):
        Asker(client="c1", role="admin")


def test_a_schema_1_store_is_upgraded_in_place(tmp_path):
    import sqlite3
    from lab.storedb import SCHEMA
    db = tmp_path / "runs.sqlite"
    con = sqlite3.connect(db)
    con.executescript(SCHEMA + "PRAGMA user_version = 1;")
    con.execute("INSERT INTO runs (run_id, shape_id, config, status, created) VALUES (?, ?, ?, 'interrupted', 0)",
                (TINY.run_id, TINY.shape_id, TINY.to_json()))
    con.commit()
    con.close()
    store = RunStore(tmp_path)
    (rec,) = store.records()
    assert rec.run_id == TINY.run_id
    assert rec.asked_by is None
    assert RunQueue(store).ask([TINY], _asker("Ann")).queued == {TINY.run_id: 1}
    assert store._con().execute("PRAGMA user_version").fetchone()[0] == 2
    assert os.path.exists(db)
    assert store.integrity() == "ok"
