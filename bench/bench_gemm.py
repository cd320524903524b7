"""The weight products of a Transformer step, one library at a time: XLA (what `lab` runs on),
NumPy (OpenBLAS) and PyTorch (MKL / oneDNN), fp32, GFLOP/s.

About three quarters of a training step at width >= 256 are these products, so how fast the
library's GEMM runs them bounds the whole step. Each library runs in its own process: worker
threads of one library spin for a while after their work and slow the next one down when
they share a process (measured: PyTorch at 80 instead of 180 GFLOP/s right after NumPy).

`python -m bench.bench_gemm [--width 384] [--tokens 4096]`
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

from lab import runtime

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("jax", "numpy", "torch")


def products(width: int, tokens: int) -> dict[str, tuple[int, int, int, str]]:
    """name -> (m, k, n, transposed operand) for the MLP and attention projections of one block."""
    return {
        "x @ W_qkv": (tokens, width, 3 * width, ""),
        "x @ W_up": (tokens, width, 4 * width, ""),
        "h @ W_down": (tokens, 4 * width, width, ""),
        "g @ W_downᵀ (input gradient)": (tokens, width, 4 * width, "b"),
        "xᵀ @ g (weight gradient)": (width, tokens, 4 * width, "a"),
    }


def _measure(library: str, width: int, tokens: int, repeats: int) -> dict[str, float]:
    import time

    import numpy as np
    rng = np.random.default_rng(0)
    out = {}
    for name, (m, k, n, transposed) in products(width, tokens).items():
        a = rng.standard_normal((k, m) if transposed == "a" else (m, k), dtype=np.float32)
        b = rng.standard_normal((n, k) if transposed == "b" else (k, n), dtype=np.float32)
        if library == "jax":
            import jax
            import jax.numpy as jnp
            f = jax.jit(lambda a, b, t=transposed: (a.T if t == "a" else a) @ (b.T if t == "b" else b))
            a, b = jnp.asarray(a), jnp.asarray(b)
            run = lambda: f(a, b).block_until_ready()
        elif library == "torch":
            import torch
            a, b = torch.from_numpy(a), torch.from_numpy(b)
            run = lambda t=transposed: (a.T if t == "a" else a) @ (b.T if t == "b" else b)
        else:
            run = lambda t=transposed: (a.T if t == "a" else a) @ (b.T if t == "b" else b)
        for _ in range(3):
            run()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
        out[name] = 2 * m * k * n / float(np.median(times)) / 1e9
    return out


def measure(width: int = 384, tokens: int = 4096, repeats: int = 9) -> dict:
    """GFLOP/s per product and library, each library in a fresh process (a missing one is skipped)."""
    rates = {}
    for lib in LIBRARIES:
        code = (f"import json; from bench.bench_gemm import _measure; "
                f"print(json.dumps(_measure({lib!r}, {width}, {tokens}, {repeats})))")
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600,
                             env=runtime.fast_allocator_env())   # as lab runs: freed pages kept
        if res.returncode == 0:
            rates[lib] = json.loads(res.stdout.strip().splitlines()[-1])
        elif "ModuleNotFoundError" not in res.stderr:
            raise RuntimeError(f"GEMM benchmark for {lib} failed:\n{res.stderr[-2000:]}")
    return {"width": width, "tokens": tokens, "gflops": rates}


def report(result: dict) -> None:
    rates = result["gflops"]
    libs = list(rates)
    print(f"\nweight products of one block (width {result['width']}, {result['tokens']} tokens), fp32 GFLOP/s, "
          "each library in its own process:")
    print(f"{'product':>30} " + " ".join(f"{lib:>7}" for lib in libs))
    for name in products(result["width"], result["tokens"]):
        print(f"{name:>30} " + " ".join(f"{rates[lib][name]:>7.1f}" for lib in libs))
    if "jax" in rates and len(libs) > 1:
        mean = lambda lib: sum(rates[lib].values()) / len(rates[lib])
        best = max((lib for lib in libs if lib != "jax"), key=mean)
        print(f"XLA runs these at {mean('jax') / mean(best):.2f}x the rate of {best}")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=384)
    p.add_argument("--tokens", type=int, default=4096, help="batch x context")
    args = p.parse_args(argv)
    result = measure(args.width, args.tokens)
    report(result)
    return result


if __name__ == "__main__":
    main()
