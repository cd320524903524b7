import json
import subprocess
import sys

import pytest

from lab.cli import main

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


@pytest.mark.parametrize("args, words", [
    (["--width", "0"], "error: width must be between 1 and 16384, got 0; try --width 64"),
    (["--depth", "-1"], "depth must be between 1"),
    (["--lr", "abc"], "'abc' is not a number"),
    (["--optimizer", "adamz"], "invalid choice: 'adamz'"),
    (["--tokens", "100"], "smaller than one batch (batch 32 x context 64 = 2048 tokens); use --tokens 2048 or more"),
    (["--data", "/no/such/file.txt"], "does not exist"),
    (["--width", "30", "--heads", "4"], "divisible by heads"),
])
def test_bad_values_give_one_line_and_exit_2(capsys, args, words):
    with pytest.raises(SystemExit) as e:
        raise SystemExit(main(["train", "--no-store", *args]))
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ")
    assert words in err
    assert "\n" not in err
    assert "Traceback" not in err


def test_numbers_accept_scientific_and_suffixes():
    from lab.cli.options import integer, number
    assert integer("2e5") == 200_000
    assert integer("200k") == 200_000
    assert number("3e-3") == 0.003


def test_every_option_has_help():
    from lab.cli import build_parser
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        for action in p._actions:
            if action.dest != "help" and action.option_strings:
                assert action.help, f"{name} {action.option_strings} has no help"


def test_flags_come_from_the_schema():
    from lab.cli import build_parser
    from lab.config import default
    from lab.schema import SETTINGS
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    train = {o: a for a in sub.choices["train"]._actions for o in a.option_strings}
    sweep = {o: a for a in sub.choices["sweep"]._actions for o in a.option_strings}
    for s in SETTINGS:
        if s.cli_flag is None:
            continue
        assert s.cli_flag in train, s.path
        assert train[s.cli_flag].dest in (s.key, "data"), s.path
        if s.cli_flag != "--data":
            assert train[s.cli_flag].default == default(s.path), s.path
            assert s.help in train[s.cli_flag].help, s.path
        if s.sweep_flag:
            assert sweep[s.sweep_flag].default is None
        elif s.sweep:
            assert s.cli_flag in sweep, s.path
    assert train["--width"].type("2k") == 2000
    assert train["--lr"].type("3e-3") == 3e-3


def test_train_json_tiny_run_subprocess():
    out = run_cli("train", "--width", "16", "--depth", "1", "--heads", "2", "--context", "16", "--batch", "4",
                  "--tokens", "2e3", "--json", "--no-store")
    assert out.returncode == 0, out.stderr
    [row] = json.loads(out.stdout)                           # a list, one run per seed
    for key in ("run_id", "status", "params_total", "params_non_embedding", "tokens", "flops", "train_loss",
                "eval_loss", "tokens_per_s", "first_step_s", "wall_s", "device"):
        assert key in row
    assert row["status"] == "done"
    assert row["tokens"] >= 2000
    assert "tok" in out.stderr                               # the progress bar went to stderr


@pytest.mark.slow
def test_the_readme_example_learns_well_below_the_unigram_baseline():
    out = run_cli("train", "--width", "64", "--depth", "2", "--tokens", "2e5", "--optimizer", "adamw", "--lr", "3e-3",
                  "--json", "--no-store")
    assert out.returncode == 0, out.stderr
    [row] = json.loads(out.stdout)
    assert row["status"] == "done"
    assert row["eval_loss"] < row["unigram_loss"] - 0.5
    assert row["wall_s"] < 120


TINY_TRAIN = ["train", "--width", "16", "--depth", "1", "--heads", "2", "--context", "16", "--batch", "8",
              "--tokens", "2e3", "--evals", "2", "--json", "--quiet"]


def test_train_with_a_store_prints_a_finished_run_and_force_trains_a_new_attempt_beside_it(capsys, tmp_path):
    from lab.store import RunStore
    assert main([*TINY_TRAIN, "--store", str(tmp_path)]) == 0
    [first] = json.loads(capsys.readouterr().out)
    store = RunStore(tmp_path)
    before = store.record(first["run_id"], curve=True)
    assert before.status == "done"
    assert before.attempts == 1

    assert main([*TINY_TRAIN, "--store", str(tmp_path)]) == 0          # again: printed from the store
    out = capsys.readouterr()
    assert json.loads(out.out) == [first]
    assert f"run {first['run_id']} is already in the store (done, trained today at" in out.err
    assert "without training; --force trains a new attempt beside it" in out.err
    assert store.record(first["run_id"]).attempts == 1

    assert main([*TINY_TRAIN, "--store", str(tmp_path), "--force"]) == 0   # a new attempt, never over it
    out = capsys.readouterr()
    [retry] = json.loads(out.out)
    assert retry["run_id"] != first["run_id"]
    assert "training attempt 1 of run" in out.err
    after = store.record(first["run_id"], curve=True)
    assert after.finished == before.finished
    assert after.result.curve == before.result.curve
    assert {r.run_id: (r.status, r.config.attempt) for r in store.records()} == {
        first["run_id"]: ("done", 0), retry["run_id"]: ("done", 1)}


def test_train_refuses_a_run_another_process_is_training(capsys, tmp_path):
    import threading
    from lab.cli import build_parser
    from lab.cli.options import run_config
    from lab.store import RunStore
    cfg = run_config(build_parser().parse_args(TINY_TRAIN))
    store = RunStore(tmp_path)
    claimed, release = threading.Event(), threading.Event()

    def other():                                   # another owner (a thread is one) holds the run
        assert store.claims([cfg]).claimed == [cfg]
        claimed.set()
        release.wait(timeout=120)

    t = threading.Thread(target=other)
    t.start()
    try:
        claimed.wait(timeout=60)
        assert main([*TINY_TRAIN, "--store", str(tmp_path)]) == 2
    finally:
        release.set()
        t.join()
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: run {cfg.run_id} is being trained by another process")
    assert "\n" not in err
    assert "wait for it to finish" in err
    assert [r.run_id for r in store.records()] == [cfg.run_id]
