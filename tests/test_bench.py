"""The step profiler reads what XLA and JAX's profiler write (speed itself is measured in bench/, not here)."""

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import as_users_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_profile_step_attributes_the_step_to_named_products():
    out = subprocess.run([sys.executable, "-m", "bench.profile_step", "--shape", "64,1,64,8", "--steps", "2",
                          "--top", "40"], capture_output=True, text=True, timeout=300, cwd=ROOT,
                         env=as_users_run())     # the operations of the optimised program users run
    assert out.returncode == 0, out.stderr[-2000:]
    # the profiler tells the training calls from the others by their length, so on a busy machine
    # it may count one more or fewer than the 2 (+1 warm-up) it trained: the count is not the point
    head = re.search(r"shape 64x1, ctx 64, batch 8: ([\d.]+) ms per step \((\d+) profiled\).*add up to ([\d.]+) ms",
                     out.stdout)
    assert head, out.stdout[:2000]
    assert 1 <= int(head.group(2)) <= 3, head.group(0)
    step_ms, ops_ms = float(head.group(1)), float(head.group(3))
    assert step_ms > 0 and 0.3 * step_ms < ops_ms < 3 * step_ms    # the operations account for the step
    kinds = dict((k.strip(), float(ms)) for ms, k in re.findall(r"^\s*([\d.]+)\s+(?:[\d.]+)?\s+(matmul \(weights\)"
                                                                 r"|elementwise, copies, transposes)$", out.stdout, re.M))
    assert kinds.get("matmul (weights)", 0) > 0 and kinds.get("elementwise, copies, transposes", 0) > 0
    # every product of a weight (64 wide) is named with its shapes and a rate
    assert re.search(r"f32\[512,64\] x f32\[64,\d+\] -> f32\[512,\d+\]", out.stdout), out.stdout[-3000:]


def test_bench_shapes_are_parsed_and_bad_ones_refused_with_the_expected_form():
    from bench.bench_train import parse_shapes
    assert parse_shapes("256x4x128x32, 384X6x256x16") == [(256, 4, 128, 32), (384, 6, 256, 16)]
    assert parse_shapes("") == []
    for bad in ("256x4x128", "256x4x0x32", "wide"):
        with pytest.raises(ValueError, match="WIDTHxDEPTHxCONTEXTxBATCH"):
            parse_shapes(bad)


def test_gemm_benchmark_measures_every_product_for_each_installed_library():
    from bench import bench_gemm
    result = bench_gemm.measure(width=32, tokens=256, repeats=2)
    assert {"jax", "numpy"} <= set(result["gflops"])
    for rates in result["gflops"].values():
        assert set(rates) == set(bench_gemm.products(32, 256))
        assert all(r > 0 for r in rates.values())


def test_best_learning_rate_is_the_parabola_vertex_inside_the_grid():
    from bench.lr_transfer import best_lr
    lrs = [1e-3, 2e-3, 4e-3, 8e-3]
    losses = [(math.log(lr) - math.log(3e-3)) ** 2 + 2.0 for lr in lrs]   # a parabola in log lr around 3e-3
    assert best_lr(lrs, losses) == pytest.approx(3e-3, rel=1e-6)
    assert best_lr(lrs, [1.0, 2.0, 3.0, 4.0]) == 1e-3                       # at an edge: the grid point


@pytest.mark.slow
def test_lr_transfer_smoke_run_writes_every_loss(tmp_path):
    out = subprocess.run([sys.executable, "-m", "bench.lr_transfer", "--tiny", "--json", str(tmp_path / "t.json")],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads((tmp_path / "t.json").read_text())
    assert len(report["rows"]) == 2 * 2 * 3 and all(math.isfinite(r["mean"]) for r in report["rows"])
    assert set(report["ratio"]) == {"mup", "standard"} and all(v > 0 for v in report["ratio"].values())
    assert "| mup |" in out.stdout


@pytest.mark.slow
def test_cooldowns_smoke_run_compares_every_length_both_ways(tmp_path, capsys):
    from bench.cooldowns import main
    report = main(["--tiny", "--json", str(tmp_path / "c.json")])
    rows = [r for r in report["rows"] if "diff" in r]
    assert [r["ratio"] for r in rows] == [5.0, 10.0] and all(math.isfinite(r["diff"]) for r in rows)
    assert all(0 < r["cooldown_tokens"] < r["tokens"] for r in rows) and 0 < report["saved"] < 1
    assert "| 16 | 5 |" in capsys.readouterr().out


def test_a_validation_position_is_seen_exactly_when_its_bytes_occur_in_the_training_text():
    from bench.memorised import seen_targets
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, 5000).astype(np.uint8)
    val = rng.integers(0, 256, 400).astype(np.uint8)
    val[100:180] = train[2000:2080]                      # 80 bytes copied from the training text
    seen = seen_targets(train, val, 16)
    assert np.flatnonzero(seen).tolist() == list(range(115, 180))   # targets whose 16 bytes all lie in the copy
    assert not seen_targets(train, val, 81).any()        # no window of 81 bytes was copied
