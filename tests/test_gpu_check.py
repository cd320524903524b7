"""The accelerator check (`python -m bench --gpu-check`) in tiny mode on CPU: every part measured for
real, sane numbers, the reasons where a number cannot exist, a table; the budget and error guards."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import as_users_run

ROOT = Path(__file__).resolve().parents[1]


def positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


@pytest.mark.slow
def test_gpu_check_on_cpu_runs_every_part_on_tiny_models(tmp_path):
    out = tmp_path / "check.json"
    env = dict(as_users_run(), JAX_PLATFORMS="cpu")    # tiny mode is automatic on CPU; a benchmark
                                                       # measures the code users run
    res = subprocess.run([sys.executable, "-m", "bench", "--gpu-check", "--out", str(out)], capture_output=True,
                         text=True, timeout=500, cwd=ROOT, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    r = json.loads(out.read_text())                    # strict JSON: no NaN, no Infinity
    from bench.gpu_check import SECTIONS
    assert r["tiny"] is True and r["elapsed_s"] < r["budget_s"]
    for name in SECTIONS:
        assert r[name]["status"] == "ok", (name, r[name])

    dev = r["device"]
    assert dev["platform"] == "cpu" and dev["device_kind"] and dev["device"]
    assert positive(dev["bf16_peak"]["flops_per_s"]) and positive(dev["fp32_peak"]["flops_per_s"])

    rows = r["train"]["rows"]
    assert {(x["width"], x["precision"]) for x in rows} == {(w, p) for w in (32, 64) for p in ("bf16", "fp32")}
    for x in rows:
        assert x["status"] == "done", x
        assert positive(x["tokens_per_s"]) and positive(x["flops_per_token"])
        assert 0 < x["mfu"] < 2, x                     # a fraction of the peak measured in the same run
        peak = dev[f"{x['precision']}_peak"]["flops_per_s"]
        assert x["mfu"] == pytest.approx(x["flops_per_token"] * x["tokens_per_s"] / peak)

    vm = r["vmap"]
    assert vm["seeds"] == 8 and positive(vm["one_seed_tokens_per_s"]) and positive(vm["vmapped_tokens_per_s"])
    assert vm["ratio"] == pytest.approx(vm["vmapped_tokens_per_s"] / vm["one_seed_tokens_per_s"])

    fs = r["first_step"]
    assert positive(fs["cold_first_step_s"]) and positive(fs["warm_first_step_s"]) and fs["cache_entries"] > 0
    assert fs["warm_over_cold"] < 1                    # the cache helped: the warm run compiled nothing

    st = r["stalls"]
    for v in ("bare", "relay", "eval_and_relay"):
        assert positive(st[f"{v}_step_ms"]) and math.isfinite(st[f"{v}_host_gap_ms_per_chunk"])
    assert math.isfinite(st["relative_overhead"]) and st["relative_overhead"] > -0.9

    mem = r["memory"]["rows"]
    assert len(mem) == 4
    for m in mem:                                      # CPU: no allocator statistics, and it says so
        assert m["peak_bytes_in_use"] is None and "memory_stats" in m["reason"] and positive(m["estimate_bytes"])

    tk = r["two_kernels"]
    assert tk["both_finished"] and len(tk["kernels"]) == 2
    assert all(positive(x) for x in tk["tokens_per_s"]) and positive(tk["alone_tokens_per_s"])
    assert 0 < tk["overlap"] <= 1

    for g in r["goals"].values():                      # H200 goals: shown, not judged on tiny models
        assert g["met"] is None and g["reason"]
    assert r["goals"]["vmap_8_seeds_over_one"]["measured"] == vm["ratio"]
    assert "| check | measured | goal (H200) |" in res.stdout and r["table"] in res.stdout


def test_gpu_check_past_its_budget_skips_every_part_with_a_note(tmp_path):
    from bench import gpu_check
    out = tmp_path / "check.json"
    gpu_check.main(["--budget-s", "0", "--tiny", "--out", str(out)])
    r = json.loads(out.read_text())
    for name in gpu_check.SECTIONS:
        assert r[name]["status"] == "skipped" and "--budget-s" in r[name]["reason"], r[name]
    assert all(g["measured"] is None and g["reason"] for g in r["goals"].values())
    assert "skipped" in r["table"]


def test_a_failing_part_records_its_error_and_the_default_output_is_ignored_by_git():
    from bench import gpu_check
    ctx = gpu_check.Context(gpu_check.TINY, budget_s=60)

    def broken(_):
        raise ValueError("no such device")

    s = gpu_check.run_section(ctx, "vmap", broken)
    assert s["status"] == "error" and "ValueError: no such device" in s["error"] and s["seconds"] >= 0
    assert gpu_check.run_section(ctx, "vmap", lambda _: {"ratio": 2.0}) | {"seconds": 0} == \
        {"ratio": 2.0, "status": "ok", "seconds": 0}
    res = subprocess.run(["git", "check-ignore", "-q", str(gpu_check.DEFAULT_OUT)], cwd=ROOT)
    assert res.returncode == 0, "bench/gpu_check.json should be listed in .gitignore"


def test_bench_hands_gpu_check_its_options():
    res = subprocess.run([sys.executable, "-m", "bench", "--gpu-check", "--only", "nonsense"], capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 2 and "unknown part(s) nonsense" in res.stderr
