"""Training throughput against PyTorch eager and the machine's matmul peak, measured side by side.

Every figure is a median over interleaved rounds (ours, PyTorch, ours, PyTorch, ...), so a
noisy neighbour hurts both sides alike; the matmul peak is measured in the same run.
"""

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

SHAPES = [  # width, depth, context, batch (heads = width // 32, at least 2)
    (64, 2, 64, 32),
    (128, 4, 128, 32),
    (256, 4, 128, 32),
    (384, 6, 256, 16),
]


def parse_shapes(text: str) -> list[tuple[int, int, int, int]]:
    """'256x4x128x32,384x6x256x16' -> [(256, 4, 128, 32), (384, 6, 256, 16)] (width, depth, context, batch)."""
    shapes = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        parts = item.lower().split("x")
        if len(parts) != 4 or not all(x.isdigit() and int(x) > 0 for x in parts):
            raise ValueError(f"benchmark shape {item!r} is not WIDTHxDEPTHxCONTEXTxBATCH; write e.g. 256x4x128x32")
        shapes.append(tuple(int(x) for x in parts))
    return shapes


def heads_for(width: int) -> int:
    return max(2, width // 32)


def matmul_peak(repeats: int = 5) -> dict:
    """Best fp32 GFLOP/s of a square matmul (numpy and jax.numpy), the MFU denominator."""
    import jax
    import jax.numpy as jnp
    out = {}
    for n in (1024, 2048):
        a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
        best_np = best_jax = 0.0
        ja = jnp.asarray(a)
        f = jax.jit(lambda x: x @ x)
        f(ja).block_until_ready()
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ a
            best_np = max(best_np, 2 * n ** 3 / (time.perf_counter() - t0) / 1e9)
            t0 = time.perf_counter()
            f(ja).block_until_ready()
            best_jax = max(best_jax, 2 * n ** 3 / (time.perf_counter() - t0) / 1e9)
        out[f"numpy_{n}"], out[f"jax_{n}"] = best_np, best_jax
    out["peak_gflops"] = max(out.values())
    return out


def config_for(width, depth, context, batch, steps, *, seed=0):
    from lab.config import ModelConfig, OptimConfig, RunConfig
    return RunConfig(model=ModelConfig(width=width, depth=depth, heads=heads_for(width), context=context),
                     optim=OptimConfig(name="adamw", lr=3e-3), tokens=steps * batch * context, batch=batch,
                     seed=seed, evals=1, eval_tokens=context * 4)


def ours(width, depth, context, batch, steps, *, chunk, seed=0, seeds=1) -> dict:
    """Steady-state tokens/s of lab.training.train (the first compiled call excluded)."""
    from lab.training import train, train_seeds
    cfg = config_for(width, depth, context, batch, steps + 1, seed=seed)
    if seeds == 1:
        r = train(cfg, chunk=chunk)
    else:
        r = train_seeds(cfg, list(range(seed, seed + seeds)), chunk=chunk)[0]
    return {"tokens_per_s": r.tokens_per_s, "first_step_s": r.first_step_s, "params": r.params_total,
            "flops_per_token": r.flops_per_token}


def throughput_table(shapes, rounds: int, steps: int) -> list[dict]:
    from bench import torch_ref
    from lab.data import load_dataset
    from lab.config import DataConfig
    from lab.training import auto_chunk
    tokens = load_dataset(DataConfig()).train
    rows = []
    for (w, d, t, b) in shapes:
        chunk = auto_chunk(config_for(w, d, t, b, steps))
        n = max(steps, 8 * chunk)              # whole chunks: chunk_bounds uses full calls from 8 on
        ours(w, d, t, b, chunk, chunk=chunk)                     # compile outside the timed rounds
        a, p = [], []
        for r in range(rounds):
            a.append(ours(w, d, t, b, n, chunk=chunk, seed=r + 1))
            p.append(torch_ref.throughput(w, d, heads_for(w), t, b, tokens, steps=n, seed=r))
        ours_tps = statistics.median(x["tokens_per_s"] for x in a)
        torch_tps = statistics.median(x["tokens_per_s"] for x in p)
        rows.append({"width": w, "depth": d, "context": t, "batch": b, "chunk": chunk, "params": a[0]["params"],
                     "torch_params": p[0]["params"], "flops_per_token": a[0]["flops_per_token"],
                     "ours_tokens_per_s": ours_tps, "torch_tokens_per_s": torch_tps, "ratio": ours_tps / torch_tps,
                     "ours_rounds": [x["tokens_per_s"] for x in a], "torch_rounds": [x["tokens_per_s"] for x in p],
                     "torch_threads": p[0]["threads"]})
    return rows


def first_call_latency(shape=(128, 4, 128, 32)) -> dict:
    """Time to the first step: cold (fresh process, no compilation cache), a second same-shape run
    in the same process (another seed and learning rate), and a fresh process with a warm cache."""
    w, d, t, b = shape
    code = ("import json, sys; from lab import runtime; runtime.setup(); "
            "from bench.bench_train import config_for; from lab.training import train; "
            f"r = train(config_for({w}, {d}, {t}, {b}, 2), chunk=1); "
            f"r2 = train(config_for({w}, {d}, {t}, {b}, 3, seed=5).replace(optim__lr=1e-3), chunk=1); "
            "print(json.dumps([r.first_step_s, r2.first_step_s]))")
    import tempfile
    with tempfile.TemporaryDirectory() as cache:
        out = {}
        for label, env_cache in (("cold", cache), ("warm_cache_process", cache)):
            env = dict(os.environ, SCALING_LAB_JAX_CACHE=env_cache, PYTHONPATH=str(ROOT))
            res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                                 timeout=600)
            if res.returncode:
                raise RuntimeError(res.stderr[-2000:])
            first, second = json.loads(res.stdout.strip().splitlines()[-1])
            out[f"{label}_first_step_s"] = first
            if label == "cold":
                out["second_run_same_process_s"] = second
    out["second_over_first"] = out["second_run_same_process_s"] / out["cold_first_step_s"]
    return out


def vmap_efficiency(shape=(64, 2, 64, 32), seeds=4, steps=24) -> dict:
    """Throughput of `seeds` vmapped seeds over one seed at a time (1.0 = no gain)."""
    w, d, t, b = shape
    from lab.training import auto_chunk
    chunk = auto_chunk(config_for(w, d, t, b, steps))
    ours(w, d, t, b, chunk, chunk=chunk)
    ours(w, d, t, b, chunk, chunk=chunk, seeds=seeds)
    one = statistics.median(ours(w, d, t, b, steps, chunk=chunk, seed=s)["tokens_per_s"] for s in range(3))
    many = statistics.median(ours(w, d, t, b, steps, chunk=chunk, seed=s, seeds=seeds)["tokens_per_s"] for s in range(3))
    return {"shape": list(shape), "seeds": seeds, "one_seed_tokens_per_s": one, "vmapped_tokens_per_s": many,
            "efficiency": many / one}
