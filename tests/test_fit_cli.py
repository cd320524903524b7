"""`scaling-lab fit`: tables and the run store in, fits out; mistakes end in one `error:` line and exit 2."""

import argparse
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lab.cli.fit import register

ROOT = Path(__file__).parents[1]
DATA = ROOT / ".." / "shared" / "data" / "chinchilla" / "svg_extracted_data.csv"
TRUE = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)


def law(N, D):
    return TRUE["E"] + TRUE["A"] * N ** -TRUE["alpha"] + TRUE["B"] * D ** -TRUE["beta"]


def runs(budgets=np.logspace(18, 21, 7), sizes=9) -> pd.DataFrame:
    N = np.concatenate([np.logspace(-1, 1, sizes) * 0.1 * np.sqrt(C / 6) for C in budgets])
    C = np.repeat(budgets, sizes)
    D = C / (6 * N)
    return pd.DataFrame({"params": N, "tokens": D, "flops": C, "loss": law(N, D)})


def cli(capsys, *argv):
    """Run `fit` in-process through argparse; returns (exit status, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="scaling-lab")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["fit", *map(str, argv)])
    rc = args.func(args)
    out, err = capsys.readouterr()
    return rc, out, err


def fails(capsys, *argv) -> str:
    rc, out, err = cli(capsys, *argv)
    assert rc == 2
    assert out == ""
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, err
    return err


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "runs.csv"
    runs().to_csv(path, index=False)
    return path


def test_chinchilla_json(capsys, table):
    rc, out, err = cli(capsys, table, "--law", "chinchilla", "--json")
    assert rc == 0, err
    res = json.loads(out)
    fit = res["fit"]
    assert fit["converged"]
    assert res["n_points"] == 63
    for k, v in TRUE.items():
        assert fit[k] == pytest.approx(v, rel=1e-4)
    assert res["equation"] == "L(N, D) = 1.69 + 406.4·N^-0.34 + 410.7·D^-0.28"
    assert [r["C"] for r in res["allocation"]] == [1e21, 1e22, 1e23, 1e24]
    assert res["allocation"][0]["N_opt"] * res["allocation"][0]["D_opt"] * 6 == pytest.approx(1e21)


@pytest.mark.parametrize("law_name, column, alpha", [("kaplan-n", "N", 0.34), ("kaplan-d", "D", 0.34),
                                                     ("kaplan-c", "C", 0.17)])
def test_kaplan_laws(capsys, tmp_path, law_name, column, alpha):
    x = np.logspace(6, 10, 20)
    df = pd.DataFrame({"params": x, "tokens": x * 20, "loss": 1.69 + 406.4 * x ** -0.34})
    df.to_csv(tmp_path / "k.csv", index=False)
    rc, out, err = cli(capsys, tmp_path / "k.csv", "--law", law_name, "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert res["fit"]["variable"] == column
    assert res["fit"]["converged"]
    assert res["fit"]["alpha"] == pytest.approx(alpha, rel=1e-4)   # D = 20N: same exponent; C = 120N²: half
    assert res["equation"].startswith(f"L({column}) = ")
    assert "allocation" not in res


def test_kaplan_without_irreducible_and_compute_column(capsys, tmp_path):
    C = np.logspace(15, 20, 12)
    pd.DataFrame({"params": C ** 0.5, "compute": C, "loss": 2e3 * C ** -0.05}).to_csv(tmp_path / "c.csv", index=False)
    rc, out, err = cli(capsys, tmp_path / "c.csv", "--law", "kaplan-c", "--c-col", "compute", "--no-irreducible",
                       "--json")
    assert rc == 0, err
    fit = json.loads(out)["fit"]
    assert fit["E"] == 0
    assert fit["alpha"] == pytest.approx(0.05, rel=1e-4)


def test_isoflop_json(capsys, table):
    rc, out, err = cli(capsys, table, "--law", "isoflop", "--json")
    assert rc == 0, err
    fit = json.loads(out)["fit"]
    assert fit["n_used"] == 7
    assert len(fit["profiles"]) == 7
    assert fit["a"] == pytest.approx(TRUE["beta"] / (TRUE["alpha"] + TRUE["beta"]), abs=0.01)


def test_readable_summary_with_bootstrap(capsys, tmp_path):
    df = runs()
    df["loss"] *= np.exp(0.005 * np.random.default_rng(0).standard_normal(len(df)))
    df.to_csv(tmp_path / "noisy.csv", index=False)
    rc, out, err = cli(capsys, tmp_path / "noisy.csv", "--bootstrap", "100", "--budgets", "1e21,1e23")
    assert rc == 0, err
    assert "L(N, D) = " in out
    assert "95% interval (100 resamples)" in out
    assert "compute-optimal allocation" in out
    assert "N_opt@1e+21" in out
    alpha_line = next(line for line in out.splitlines() if line.strip().startswith("alpha"))
    assert "[" in alpha_line


def test_bootstrap_json_is_reproducible(capsys, table):
    first = json.loads(cli(capsys, table, "--bootstrap", "50", "--seed", "7", "--json")[1])["bootstrap"]
    again = json.loads(cli(capsys, table, "--bootstrap", "50", "--seed", "7", "--json")[1])["bootstrap"]
    assert first == again
    assert first["n"] == 50
    assert set(first["intervals"]) >= {"E", "alpha", "a", "N_opt@1e+21"}


def test_real_chinchilla_file(capsys):
    if not DATA.exists():
        pytest.skip(f"Chinchilla points not found at {DATA}")
    rc, out, err = cli(capsys, DATA, "--n-col", "Model Size", "--c-col", "Training FLOP", "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert res["n_points"] == 245
    assert res["fit"]["converged"]
    assert res["fit"]["E"] == pytest.approx(1.891, abs=1e-3)
    assert res["columns"]["D"] == "Training FLOP/(6·Model Size)"


def test_errors_are_one_line(capsys, tmp_path, table):
    assert "No such file" in fails(capsys, tmp_path / "missing.csv")
    err = fails(capsys, table, "--loss-col", "eval_loss")
    assert "'eval_loss' not found" in err
    assert "params, tokens, flops, loss" in err
    bad = runs()
    bad.loc[3, "loss"] = np.nan
    bad.to_csv(tmp_path / "nan.csv", index=False)
    assert "column 'loss' has 1 missing" in fails(capsys, tmp_path / "nan.csv")
    bad = runs()
    bad.loc[0, "params"] = -5
    bad.to_csv(tmp_path / "neg.csv", index=False)
    assert "non-positive" in fails(capsys, tmp_path / "neg.csv")
    runs().head(4).to_csv(tmp_path / "few.csv", index=False)
    assert "at least 6 points, got 4" in fails(capsys, tmp_path / "few.csv")
    (tmp_path / "empty.csv").write_text("")
    assert "empty" in fails(capsys, tmp_path / "empty.csv")
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)) * 4)
    fails(capsys, tmp_path / "binary.csv")
    const = runs()
    const["loss"] = 3.0
    const.to_csv(tmp_path / "const.csv", index=False)
    assert "constant" in fails(capsys, tmp_path / "const.csv")
    assert "exactly one" in fails(capsys)
    assert "exactly one" in fails(capsys, table, "--store", tmp_path)
    assert "at least 2 draws" in fails(capsys, table, "--law", "isoflop", "--bootstrap", "1")
    assert "--budgets" in fails(capsys, table, "--budgets", "lots")
    assert "at least 2 resamples" in fails(capsys, table, "--bootstrap", "1")


@pytest.fixture
def fake_store(monkeypatch):
    """A stand-in for lab.store (written elsewhere): finished_table() with two diverged runs."""
    df = runs().rename(columns={"params": "params_total", "loss": "eval_loss"})
    df["params_non_embedding"] = df["params_total"] * 0.9
    df["status"] = "finished"
    df.loc[[2, 5], "status"] = "diverged"
    df.loc[5, "eval_loss"] = np.nan
    opened = []

    class RunStore:
        def __init__(self, path):
            opened.append(path)

        def finished_table(self):
            return df.copy()

    monkeypatch.setitem(sys.modules, "lab.store", types.SimpleNamespace(RunStore=RunStore))
    return opened


def test_store_leaves_out_diverged_runs(capsys, tmp_path, fake_store):
    rc, out, err = cli(capsys, "--store", tmp_path, "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert fake_store == [str(tmp_path)]
    assert res["n_points"] == 61
    assert res["left_out"] == 2
    assert res["columns"]["N"] == "params_total"
    assert res["fit"]["converged"]
    rc, out, err = cli(capsys, "--store", tmp_path, "--law", "kaplan-n")
    assert rc == 0
    assert "note: left out 2 diverged run(s)" in err
    assert "power law in N" in out


def test_store_defaults_to_non_embedding_params_for_kaplan(capsys, tmp_path, fake_store):
    res = json.loads(cli(capsys, "--store", tmp_path, "--law", "kaplan-n", "--json")[1])
    assert res["columns"]["N"] == "params_non_embedding"


def test_a_store_that_cannot_be_read_ends_in_one_line(capsys, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a run store " * 100)
    assert "not a folder" in fails(capsys, "--store", notes / "sub")
    assert "cannot open the run store" in fails(capsys, "--store", notes)


@pytest.mark.skipif(not (ROOT / "lab" / "__main__.py").exists(), reason="lab/__main__.py not written yet")
def test_python_dash_m_lab_fit(table):
    done = subprocess.run([sys.executable, "-m", "lab", "fit", str(table), "--json"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["fit"]["alpha"] == pytest.approx(0.34, rel=1e-4)
    bad = subprocess.run([sys.executable, "-m", "lab", "fit", str(table) + ".missing"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: ")
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize("law", ["chinchilla", "kaplan-c", "isoflop"])
def test_values_near_the_largest_float_end_in_one_line(capsys, tmp_path, law):
    path = tmp_path / "huge.csv"
    path.write_text("params,tokens,loss\n" + "".join(f"{k}e300,{k + 1}e307,{3.1 - k / 10}\n" for k in range(1, 8)))
    assert "overflows in data row 1" in fails(capsys, path, "--law", law)
    path.write_text("params,tokens,flops,loss\n" + "".join(f"{k}e150,{k}e150,{k}e307,{3.1 - k / 10}\n"
                                                             for k in range(1, 8)))
    rc, out, err = cli(capsys, path, "--law", law, "--c-col", "flops")
    assert rc in (0, 2)
    assert "Traceback" not in err
    assert rc == 0 or err.count("\n") == 1
