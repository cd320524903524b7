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
    assert err.startswith("error: ") and words in err and "\n" not in err and "Traceback" not in err


def test_numbers_accept_scientific_and_suffixes():
    from lab.cli import integer, number
    assert integer("2e5") == 200_000 and integer("200k") == 200_000 and number("3e-3") == 0.003


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
    from lab.schema import SETTINGS
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    train = {o: a for a in sub.choices["train"]._actions for o in a.option_strings}
    sweep = {o: a for a in sub.choices["sweep"]._actions for o in a.option_strings}
    for s in SETTINGS:
        if s.cli_flag is None:
            continue
        assert s.cli_flag in train and train[s.cli_flag].dest in (s.key, "data"), s.path
        if s.cli_flag != "--data":
            assert train[s.cli_flag].default == s.default and s.help in train[s.cli_flag].help
        if s.sweep_flag:
            assert sweep[s.sweep_flag].default is None
        elif s.sweep:
            assert s.cli_flag in sweep, s.path
    assert train["--width"].type("2k") == 2000 and train["--lr"].type("3e-3") == 3e-3


def test_train_json_tiny_run_subprocess():
    out = run_cli("train", "--width", "16", "--depth", "1", "--heads", "2", "--context", "16", "--batch", "4",
                  "--tokens", "2e3", "--json", "--no-store")
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    for key in ("run_id", "status", "params_total", "params_non_embedding", "tokens", "flops", "train_loss",
                "eval_loss", "tokens_per_s", "first_step_s", "wall_s", "device"):
        assert key in row
    assert row["status"] == "done" and row["tokens"] >= 2000
    assert "tok" in out.stderr                               # the progress bar went to stderr


@pytest.mark.slow
def test_the_readme_example_learns_well_below_the_unigram_baseline():
    out = run_cli("train", "--width", "64", "--depth", "2", "--tokens", "2e5", "--optimizer", "adamw", "--lr", "3e-3",
                  "--json", "--no-store")
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert row["status"] == "done"
    assert row["eval_loss"] < row["unigram_loss"] - 0.5
    assert row["wall_s"] < 120
