"""A run store in one file, to hand to a class server: `scaling-lab pack STORE FILE` and
`scaling-lab unpack FILE STORE`.

A pack is a gzipped tar of `MANIFEST.json` (format, schema version, run ids), `runs.sqlite` (a
consistent copy made with SQLite's backup API, without the queue, pages and service settings)
and `weights/<run_id>.eqx`. Unpacking checks everything before it writes anything: only those
member names (no links, no paths that leave the folder), the manifest, `PRAGMA integrity_check`,
the schema version, every run id and config, and every weights file's header against its run.
Then the runs the target store does not hold finished are added (curves and weights with them);
runs it holds already are kept as they are.
"""

import contextlib
import json
import os
import re
import shutil
import sqlite3
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from lab.config import ConfigError, RunConfig
from lab.store import FINISHED, WEIGHTS_DIR, RunStore, check_run_id
from lab.storedb import DB_NAME, SCHEMA_VERSION, StoreError
from lab.weights import read_header

PACK_FORMAT = "scaling-lab/pack"
MEMBER = re.compile(r"^(MANIFEST\.json|runs\.sqlite|weights/[0-9a-f]{16}\.eqx)$")
MAX_MEMBER_BYTES = 8 << 30
LOCAL_TABLES = ("queue", "requests", "pages", "settings", "tasks")   # this server's state, not a run's


class PackError(StoreError):
    """A file that is not a sound scaling-lab pack."""


@dataclass(frozen=True)
class Unpacked:
    added: tuple[str, ...]          # run ids added to the store
    kept: tuple[str, ...]           # run ids the store held finished already (left as they were)
    weights: int                    # weights files added


def pack(store: RunStore | str | os.PathLike, file: str | os.PathLike) -> dict:
    """Write the store's finished and cancelled runs (not queued or running ones) into `file`.
    Returns the manifest."""
    store = store if isinstance(store, RunStore) else RunStore(store)
    file = Path(file)
    if file.is_dir():
        raise PackError(f"{file} is a folder; give the pack a file name, e.g. {file / 'class.lab.tar.gz'}")
    with tempfile.TemporaryDirectory(prefix="scaling-lab-pack-") as tmp:
        copy = Path(tmp) / DB_NAME
        src = sqlite3.connect(store.db_path)
        dst = sqlite3.connect(copy)
        with contextlib.closing(src), contextlib.closing(dst):
            src.backup(dst)
            dst.execute("PRAGMA journal_mode = DELETE")
            for table in LOCAL_TABLES:
                dst.execute(f"DELETE FROM {table}")
            dst.execute("DELETE FROM curves WHERE run_id IN (SELECT run_id FROM runs WHERE status NOT IN "
                        "('done','diverged','cancelled'))")
            dst.execute("DELETE FROM runs WHERE status NOT IN ('done','diverged','cancelled')")
            dst.commit()
            dst.execute("VACUUM")
            ids = [r[0] for r in dst.execute("SELECT run_id FROM runs ORDER BY created, run_id")]
            with_weights = [r[0] for r in dst.execute("SELECT run_id FROM runs WHERE weights = 1")]
        manifest = {"format": PACK_FORMAT, "version": 1, "schema": SCHEMA_VERSION, "created": time.time(),
                    "runs": ids, "weights": [i for i in with_weights if store.weights_path(i).is_file()]}
        (Path(tmp) / "MANIFEST.json").write_text(json.dumps(manifest, indent=1))
        part = file.with_name(f".{file.name}.part")
        with tarfile.open(part, "w:gz") as tar:
            tar.add(Path(tmp) / "MANIFEST.json", arcname="MANIFEST.json")
            tar.add(copy, arcname=DB_NAME)
            for run_id in manifest["weights"]:
                tar.add(store.weights_path(run_id), arcname=f"{WEIGHTS_DIR}/{run_id}.eqx")
        os.replace(part, file)
    return manifest


def _refuse(file, why: str) -> PackError:
    return PackError(f"{file} is not a scaling-lab pack ({why}); make one with `scaling-lab pack STORE FILE`")


def _extract(file: Path, into: Path) -> dict:
    """Check the archive's members and extract them; return the manifest."""
    try:
        tar = tarfile.open(file, "r:*")
    except (tarfile.TarError, OSError) as e:
        raise _refuse(file, f"not a readable tar archive: {e}") from None
    with tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        bad = [m.name for m in members if not MEMBER.match(m.name) or not m.isfile() or m.size > MAX_MEMBER_BYTES]
        if bad:
            raise _refuse(file, f"it holds {bad[0]!r}, which a pack never does")
        if len(set(names)) != len(names):
            raise _refuse(file, "a member appears twice")
        if "MANIFEST.json" not in names or DB_NAME not in names:
            raise _refuse(file, "no MANIFEST.json or runs.sqlite in it")
        (into / WEIGHTS_DIR).mkdir()
        for m in members:
            with tar.extractfile(m) as src, open(into / m.name, "wb") as dst:
                shutil.copyfileobj(src, dst)
    try:
        manifest = json.loads((into / "MANIFEST.json").read_text())
    except ValueError as e:
        raise _refuse(file, f"its manifest is not JSON: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != PACK_FORMAT:
        raise _refuse(file, "its manifest does not name the scaling-lab pack format")
    return manifest


def check(file: str | os.PathLike, into: Path) -> tuple[dict, list[str]]:
    """Extract and verify a pack into the empty folder `into`; returns (manifest, run ids).

    Raises:
        PackError: what is wrong, and nothing is written anywhere else.
    """
    file = Path(file)
    if not file.is_file():
        raise PackError(f"no pack file {file}; give the path of a file made by `scaling-lab pack`")
    manifest = _extract(file, into)
    if not isinstance(manifest.get("schema"), int) or manifest["schema"] > SCHEMA_VERSION:
        raise PackError(f"{file} was packed by a newer scaling-lab (store schema {manifest.get('schema')!r}, this one "
                        f"reads up to {SCHEMA_VERSION}); upgrade scaling-lab here")
    try:
        con = sqlite3.connect(f"file:{into / DB_NAME}?mode=ro", uri=True)
        with contextlib.closing(con):
            ok = "; ".join(r[0] for r in con.execute("PRAGMA integrity_check"))
            version = con.execute("PRAGMA user_version").fetchone()[0]
            rows = con.execute("SELECT run_id, config, status, weights FROM runs").fetchall()
    except sqlite3.DatabaseError as e:
        raise _refuse(file, f"its runs.sqlite is not a run store database: {e}") from None
    if ok != "ok":
        raise _refuse(file, f"its database fails SQLite's integrity check: {ok[:200]}")
    if version != manifest["schema"]:
        raise _refuse(file, f"its database has schema {version}, its manifest says {manifest['schema']}")
    ids = []
    for run_id, config, status, weights in rows:
        try:
            check_run_id(run_id)
            cfg = RunConfig.from_dict(json.loads(config))
        except (ConfigError, ValueError) as e:
            raise _refuse(file, f"run {run_id!r} is not sound: {e}") from None
        if cfg.run_id != run_id:
            raise _refuse(file, f"run {run_id}'s config hashes to {cfg.run_id}: the database was edited")
        if status not in (*FINISHED, "cancelled"):
            raise _refuse(file, f"run {run_id} is {status}; a pack holds finished runs only")
        path = into / WEIGHTS_DIR / f"{run_id}.eqx"
        if weights and not path.is_file():
            raise _refuse(file, f"run {run_id} says it has weights but weights/{run_id}.eqx is missing")
        ids.append(run_id)
    if sorted(ids) != sorted(manifest.get("runs", [])):
        raise _refuse(file, "its manifest and its database list different runs")
    for path in (into / WEIGHTS_DIR).iterdir():
        run_id = path.stem
        if run_id not in ids:
            raise _refuse(file, f"weights/{path.name} belongs to no run in it")
        try:
            with open(path, "rb") as f:
                header = read_header(f)
        except ConfigError as e:
            raise _refuse(file, f"weights/{path.name}: {e}") from None
        if header.get("run_id") != run_id:
            raise _refuse(file, f"weights/{path.name} holds run {header.get('run_id')}")
    return manifest, ids


def unpack(file: str | os.PathLike, store: RunStore | str | os.PathLike) -> Unpacked:
    """Check `file` (see `check`), then add its runs to `store`: the runs it does not hold finished,
    with their curves and weights. Nothing is written to the store unless the whole pack is sound."""
    with tempfile.TemporaryDirectory(prefix="scaling-lab-unpack-") as tmp:
        staged = Path(tmp) / "pack"
        staged.mkdir()
        _, ids = check(file, staged)
        RunStore(staged).close()          # brings an older pack's schema up to this one's
        store = store if isinstance(store, RunStore) else RunStore(store)
        store._con().execute("ATTACH DATABASE ? AS pack", (str(staged / DB_NAME),))   # not inside a transaction
        try:
            with store._tx() as con:
                have = {r[0] for r in con.execute("SELECT run_id FROM runs WHERE status IN ('done','diverged')")}
                add = [i for i in ids if i not in have]
                for run_id in add:
                    con.execute("DELETE FROM curves WHERE run_id = ?", (run_id,))
                    con.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
                    con.execute("INSERT INTO runs SELECT * FROM pack.runs WHERE run_id = ?", (run_id,))
                    con.execute("INSERT INTO curves SELECT * FROM pack.curves WHERE run_id = ?", (run_id,))
                weights = 0
                for run_id in add:                 # weights before the commit: a run never lacks its file
                    src = staged / WEIGHTS_DIR / f"{run_id}.eqx"
                    if src.is_file():
                        store._write_weights(run_id, src.read_bytes())
                        weights += 1
        finally:
            store._con().execute("DETACH DATABASE pack")
    return Unpacked(added=tuple(add), kept=tuple(i for i in ids if i in have), weights=weights)
