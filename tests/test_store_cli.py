"""`scaling-lab runs | sweep | sample`, driven through `lab.cli.main` in this process (one
child-process smoke test checks the real entry point)."""

import csv
import io
import json

import pytest
from store_helpers import TINY, TINY_ARGS, lab_process

from lab.cli import main
from lab.plans import grid, isoflop
from lab.store import RunStore
from lab.sweep import run_sweep

pytestmark = pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")  # JAX warns on fork; the child execs at once

CSV_COLUMNS = {"run_id", "status", "params_total", "params_non_embedding", "tokens", "flops", "eval_loss"}


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A store holding two finished seeds of the tiny config (read only in the tests)."""
    store_dir = tmp_path_factory.mktemp("cli-store")
    assert run_sweep(grid(TINY, seeds=[0, 1]), store_dir).ok
    return store_dir


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_sweep_dry_run_prints_the_plan_and_trains_nothing(tmp_path, capsys):
    args = ["sweep", *TINY_ARGS, "--tokens", "4096,8192", "--seeds", "0,1", "--store", tmp_path]
    code, out, _ = run(capsys, *args, "--dry-run")
    assert code == 0
    assert "4 runs" in out
    assert "estimated time" in out
    code, out, _ = run(capsys, *args, "--dry-run", "--json")
    plan = json.loads(out)
    # the command line builds exactly the configs of the Python API
    assert [r["run_id"] for r in plan["runs"]] == list(grid(TINY, tokens=[4096, 8192], seeds=[0, 1]).run_ids)
    assert RunStore(tmp_path).records() == []


def test_isoflop_dry_run_and_its_errors(tmp_path, capsys):
    args = ["sweep", *TINY_ARGS, "--store", tmp_path, "--isoflop", "2e9,8e9", "--isoflop-widths", "16,32,512"]
    code, out, _ = run(capsys, *args, "--dry-run", "--json")
    plan = json.loads(out)
    expected = isoflop(TINY, [2e9, 8e9], widths=[16, 32, 512])
    assert [r["run_id"] for r in plan["runs"]] == list(expected.run_ids)
    assert [r["budget"] for r in plan["runs"]] == list(expected.budgets)
    assert len(plan["refused"]) == 1
    code, _, err = run(capsys, *args, "--tokens", "4096", "--dry-run")
    assert code == 2
    assert err.startswith("error: an IsoFLOP plan sets each run's tokens from its budget; leave out --tokens")
    code, _, err = run(capsys, "sweep", *TINY_ARGS, "--store", tmp_path, "--isoflop", "1e9", "--widths", "16,15")
    assert code == 2
    assert "divisible by heads" in err


def test_sweep_json_then_runs_csv_json_curve_and_delete(tmp_path, capsys):
    code, out, err = run(capsys, "sweep", *TINY_ARGS, "--tokens", "4096", "--seeds", "0,1", "--store", tmp_path,
                         "--json")
    assert code == 0, err
    records = json.loads(out)
    assert [r["status"] for r in records] == ["done", "done"]
    assert "2 runs: 2 done" in err
    ids = [r["run_id"] for r in records]
    assert ids == list(grid(TINY, seeds=[0, 1]).run_ids)

    code, out, _ = run(capsys, "runs", "--store", tmp_path, "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0
    assert CSV_COLUMNS <= set(rows[0])
    assert sorted(r["run_id"] for r in rows) == sorted(ids)
    assert all(float(r["eval_loss"]) > 0 and int(r["tokens"]) == 4096 for r in rows)

    code, out, _ = run(capsys, "runs", "--store", tmp_path, "--json", "--status", "done")
    assert sorted(r["run_id"] for r in json.loads(out)) == sorted(ids)
    code, out, _ = run(capsys, "runs", "--store", tmp_path)
    assert code == 0
    assert all(i in out for i in ids)
    code, out, _ = run(capsys, "runs", "--store", tmp_path, "--curve", ids[0][:8])
    assert code == 0
    assert "train/loss" in out.splitlines()[0]
    assert len(out.splitlines()) >= 2

    code, _, err = run(capsys, "runs", "--store", tmp_path, "--delete", ids[1])
    assert code == 0
    assert ids[1] in err
    assert [r.run_id for r in RunStore(tmp_path).records()] == [ids[0]]
    code, _, err = run(capsys, "runs", "--store", tmp_path, "--delete", ids[1])
    assert code == 2
    assert err.startswith("error: no run")


def test_sample_from_the_command_line_and_python(swept, capsys):
    from lab.sample import sample
    run_id = RunStore(swept).records()[0].run_id
    code, out, _ = run(capsys, "sample", run_id[:6], "--prompt", "The ", "--length", "40", "--store", swept)
    assert code == 0
    assert out.startswith("The ")
    assert len(out) > 10
    code, again, _ = run(capsys, "sample", run_id[:6], "--prompt", "The ", "--length", "40", "--store", swept)
    assert again == out                                  # a fixed seed gives the same text
    assert out == "The " + sample(swept, run_id, "The ", length=40, temperature=0.8, seed=0) + "\n"
    assert sample(swept, run_id, "", length=0) == ""
    greedy = sample(swept, run_id, "ab", length=20, temperature=0)
    assert greedy == sample(swept, run_id, "ab", length=20, temperature=0, seed=5)   # greedy ignores the seed


def test_user_errors_exit_2_with_one_line(tmp_path, capsys):
    code, _, err = run(capsys, "sample", "0123456789abcdef", "--store", tmp_path)
    assert code == 2
    assert "scaling-lab runs" in err
    assert err.count("\n") == 1
    code, _, err = run(capsys, "sample", "../../etc/passwd", "--store", tmp_path)
    assert code == 2
    assert "not a run id" in err
    code, _, err = run(capsys, "sample", "abcd", "--temperature", "-1", "--store", tmp_path)
    assert code == 2
    assert "temperature" in err
    code, _, err = run(capsys, "runs", "--store", tmp_path, "--delete", "../x")
    assert code == 2
    assert "not a run id" in err
    code, out, err = run(capsys, "runs", "--store", tmp_path)
    assert code == 0
    assert out == ""
    assert "no runs" in err
    code, _, err = run(capsys, "sweep", *TINY_ARGS, "--widths", "", "--store", tmp_path)
    assert code == 2
    assert "widths is empty" in err
    code, _, err = run(capsys, "sweep", *TINY_ARGS, "--address", "x:1", "--store", tmp_path)
    assert code == 2
    assert "--executor ray" in err


@pytest.mark.slow
def test_the_real_entry_point_records_runs_that_runs_lists(tmp_path):
    """`python -m lab train` writes through StoreTracker; `python -m lab runs --csv` reads it back."""
    train = lab_process("train", "--width", "16", "--depth", "1", "--heads", "2", "--context", "16", "--batch", "8",
                        "--evals", "2", "--tokens", "4096", "--store", tmp_path, "--json", "--quiet")
    out, err = train.communicate(timeout=600)
    assert train.returncode == 0, err[-3000:]
    assert [r["run_id"] for r in json.loads(out)] == [TINY.run_id]
    runs = lab_process("runs", "--store", tmp_path, "--csv")
    out, err = runs.communicate(timeout=120)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert runs.returncode == 0
    assert [r["run_id"] for r in rows] == [TINY.run_id]
    assert rows[0]["status"] == "done"
