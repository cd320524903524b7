"""`scaling-lab pack STORE FILE` and `unpack FILE STORE`: a prepared store handed to a class
server, checked on the way in; anything that is not a sound pack is refused before a write."""

import io
import json
import sqlite3
import tarfile

import pytest
from store_helpers import TINY, lab_process

from lab.pack import PackError, pack, unpack
from lab.runqueue import RunQueue
from lab.store import Asker, RunStore


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A teacher's store: two finished runs with weights, one queued run (not packed)."""
    d = tmp_path_factory.mktemp("prepared")
    store = RunStore(d)
    for seed in (0, 1):
        store.train(TINY.replace(seed=seed))
    RunQueue(store).ask([TINY.replace(seed=7)], Asker(client="c", page="p"))
    return d


def test_pack_then_unpack_gives_the_same_runs_curves_and_weights(prepared, tmp_path):
    manifest = pack(prepared, tmp_path / "class.tar.gz")
    assert len(manifest["runs"]) == 2 and len(manifest["weights"]) == 2
    out = unpack(tmp_path / "class.tar.gz", tmp_path / "server")
    src, dst = RunStore(prepared), RunStore(tmp_path / "server")
    assert sorted(out.added) == sorted(manifest["runs"]) and out.weights == 2 and out.kept == ()
    for rec in src.records():
        got = dst.record(rec.run_id, curve=True)
        assert got.status == "done" and got.result.eval_loss == rec.result.eval_loss
        assert got.result.curve == src.record(rec.run_id, curve=True).result.curve
        assert dst.weights_path(rec.run_id).read_bytes() == src.weights_path(rec.run_id).read_bytes()
    assert RunQueue(dst).view().waiting == ()                          # the teacher's queue is not packed
    again = unpack(tmp_path / "class.tar.gz", tmp_path / "server")     # a second time: nothing new
    assert again.added == () and len(again.kept) == 2 and dst.integrity() == "ok"


def _tamper(src, dst, *, drop=(), add=None, edit_db=None):
    with tarfile.open(src) as tin, tarfile.open(dst, "w:gz") as tout:
        for m in tin.getmembers():
            if m.name in drop:
                continue
            data = tin.extractfile(m).read()
            if edit_db and m.name == "runs.sqlite":
                data = edit_db(data, dst)
            info = tarfile.TarInfo(m.name)
            info.size = len(data)
            tout.addfile(info, io.BytesIO(data))
        for name, data in (add or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tout.addfile(info, io.BytesIO(data))


def _edit(sql):
    def edit(data, dst):
        path = dst.with_suffix(".db")
        path.write_bytes(data)
        con = sqlite3.connect(path)
        con.execute(sql)
        con.commit()
        con.close()
        return path.read_bytes()
    return edit


@pytest.mark.parametrize("case, words", [
    ("text", "not a readable tar archive"),
    ("escape", "which a pack never does"),
    ("no-db", "no MANIFEST.json or runs.sqlite"),
    ("orphan-weights", "belongs to no run"),
    ("missing-weights", "is missing"),
    ("edited-config", "hashes to"),
    ("not-sqlite", "not a run store database"),
])
def test_a_bad_pack_is_refused_and_nothing_is_written(prepared, tmp_path, case, words):
    good = tmp_path / "good.tar.gz"
    manifest = pack(prepared, good)
    bad = tmp_path / "bad.tar.gz"
    first = manifest["weights"][0]
    if case == "text":
        bad.write_text("a class's homework, not a pack")
    elif case == "escape":
        _tamper(good, bad, add={"../../evil.py": b"print('no')"})
    elif case == "no-db":
        _tamper(good, bad, drop=("runs.sqlite",))
    elif case == "orphan-weights":
        _tamper(good, bad, add={"weights/0123456789abcdef.eqx": b"{}\n"})
    elif case == "missing-weights":
        _tamper(good, bad, drop=(f"weights/{first}.eqx",))
    elif case == "edited-config":
        _tamper(good, bad, edit_db=_edit("UPDATE runs SET config = replace(config, '\"width\":16', '\"width\":24')"))
    elif case == "not-sqlite":
        _tamper(good, bad, drop=("runs.sqlite",), add={"runs.sqlite": b"not a database at all" * 100})
    target = tmp_path / "server"
    with pytest.raises(PackError, match=words):
        unpack(bad, target)
    assert not target.exists() or RunStore(target).records() == []


def test_a_newer_pack_says_to_upgrade(prepared, tmp_path):
    good = tmp_path / "good.tar.gz"
    pack(prepared, good)
    bad = tmp_path / "newer.tar.gz"
    with tarfile.open(good) as t:
        manifest = json.loads(t.extractfile("MANIFEST.json").read())
    manifest["schema"] = 99
    _tamper(good, bad, drop=("MANIFEST.json",), add={"MANIFEST.json": json.dumps(manifest).encode()})
    with pytest.raises(PackError, match="newer scaling-lab"):
        unpack(bad, tmp_path / "server")


def test_the_command_line_packs_and_unpacks(prepared, tmp_path):
    p = lab_process("pack", prepared, tmp_path / "c.tar.gz")
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0 and "packed 2 runs" in err, err
    p = lab_process("unpack", tmp_path / "c.tar.gz", tmp_path / "server")
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0 and "2 runs added" in err, err
    p = lab_process("unpack", tmp_path / "missing.tar.gz", tmp_path / "server")
    _, err = p.communicate(timeout=120)
    assert p.returncode == 2 and err.startswith("error: no pack file") and "Traceback" not in err, err
