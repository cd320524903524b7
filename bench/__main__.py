"""`python -m bench` (or `make bench`): every benchmark, one table, one JSON file.

Prints, for each benchmark shape, our training tokens/s beside a PyTorch eager model of the
same shape measured in the same run, the ratio (and its range over the rounds), model FLOP/s
and MFU against the matmul peak measured in this run; the weight products' GEMM rate in XLA,
NumPy and PyTorch; first-call latency; vmap efficiency; fit times; app overhead.

`python -m bench --gpu-check [--tiny] [--out PATH] [--budget-s S] [--only PARTS]` runs the
accelerator check instead (bench/gpu_check.py, `make gpu-check`).

`python -m bench --class [--pages 30] [--train K] [--json PATH]` runs the class load benchmark
instead: N browser pages on one app server, time to ready and every kernel's memory
(bench/bench_class.py, `make bench-class`).
"""

import argparse
import platform
import sys
import time

from bench import save_report
from lab import runtime



def main(argv=None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--gpu-check" in argv:                      # its own options follow (python -m bench --gpu-check -h)
        from bench import gpu_check
        return gpu_check.main([a for a in argv if a != "--gpu-check"])
    if "--class" in argv:                          # its own options follow (python -m bench --class -h)
        from bench import bench_class
        return bench_class.main([a for a in argv if a != "--class"])
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="two smallest shapes, fewer rounds (a smoke run)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds per shape (median reported)")
    p.add_argument("--steps", type=int, default=8, help="timed steps per round")
    p.add_argument("--only", default="", help="comma list of parts: train,gemm,latency,vmap,batch,fit,app")
    p.add_argument("--shapes", default="", help="training shapes instead of the four defaults, "
                   "WIDTHxDEPTHxCONTEXTxBATCH, comma-separated (e.g. 256x4x128x32,384x6x256x16)")
    p.add_argument("--gpu-check", action="store_true", help="run the accelerator check instead "
                   "(bench/gpu_check.py; its options: --tiny, --out, --budget-s, --only; see --gpu-check -h)")
    p.add_argument("--class", action="store_true", dest="class_load", help="run the class load benchmark instead "
                   "(bench/bench_class.py: N browser pages on one app server; its options: --pages, --train, --json; "
                   "see --class -h)")
    p.add_argument("--json", default=None, help="output file (default bench/results/bench-<time>.json)")
    args = p.parse_args(argv)
    runtime.setup()
    from bench import bench_train
    import jax
    parts = set(args.only.split(",")) if args.only else {"train", "gemm", "latency", "vmap", "batch", "fit", "app"}
    try:
        shapes = bench_train.parse_shapes(args.shapes) or (bench_train.SHAPES[:2] if args.quick else bench_train.SHAPES)
    except ValueError as e:
        p.error(str(e))
    rounds = 1 if args.quick else args.rounds
    report = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": platform.machine(), "python": sys.version.split()[0],
              "jax": jax.__version__, "device": str(jax.devices()[0]), "cpu_count": __import__("os").cpu_count()}
    peak = bench_train.matmul_peak()
    report["matmul_peak"] = peak
    print(f"matmul peak (fp32, best of numpy/jax, 1024-2048): {peak['peak_gflops']:.1f} GFLOP/s")
    if "train" in parts:
        rows = bench_train.throughput_table(shapes, rounds, args.steps)
        for r in rows:
            r["ours_gflops"] = r["ours_tokens_per_s"] * r["flops_per_token"] / 1e9
            r["mfu"] = r["ours_gflops"] / peak["peak_gflops"]
            r["torch_mfu"] = r["torch_tokens_per_s"] * r["flops_per_token"] / 1e9 / peak["peak_gflops"]
        report["throughput"] = rows
        print(f"\n{'width':>5} {'depth':>5} {'ctx':>4} {'batch':>5} {'params':>9} | {'ours tok/s':>10} "
              f"{'torch tok/s':>11} {'ratio':>6} {'rounds':>11} | {'GFLOP/s':>7} {'MFU':>5} {'torch MFU':>9}")
        for r in rows:
            round_ratios = [a / b for a, b in zip(r["ours_rounds"], r["torch_rounds"])]
            print(f"{r['width']:>5} {r['depth']:>5} {r['context']:>4} {r['batch']:>5} {r['params']:>9,} | "
                  f"{r['ours_tokens_per_s']:>10,.0f} {r['torch_tokens_per_s']:>11,.0f} {r['ratio']:>6.2f} "
                  f"{min(round_ratios):>5.2f}-{max(round_ratios):<5.2f} | "
                  f"{r['ours_gflops']:>7.1f} {r['mfu']:>5.0%} {r['torch_mfu']:>9.0%}")
    if "gemm" in parts:
        from bench import bench_gemm
        report["gemm"] = bench_gemm.measure()
        bench_gemm.report(report["gemm"])
    if "latency" in parts:
        lat = bench_train.first_call_latency()
        report["first_call"] = lat
        print(f"\nfirst step (128x4, ctx 128): cold {lat['cold_first_step_s']:.2f} s; second same-shape run "
              f"{lat['second_run_same_process_s']:.3f} s ({lat['second_over_first']:.1%} of cold); "
              f"new process, warm cache {lat['warm_cache_process_first_step_s']:.2f} s")
    if "vmap" in parts:
        vm = bench_train.vmap_efficiency()
        report["vmap"] = vm
        print(f"\nvmap of {vm['seeds']} seeds: {vm['vmapped_tokens_per_s']:,.0f} tok/s vs one seed "
              f"{vm['one_seed_tokens_per_s']:,.0f} tok/s: {vm['efficiency']:.2f}x")
    if "batch" in parts:
        from bench import bench_batch
        print("\nqueued runs of one config trained together (the service's batches):")
        report["batch"] = bench_batch.main(["--rounds", str(rounds)])
    if "fit" in parts:
        try:
            from bench import bench_fit
        except ImportError as e:
            print(f"\nfit benchmark unavailable: {e}")
        else:
            report["fit"] = bench_fit.main([])
    if "app" in parts:
        try:
            from bench import bench_app
        except ImportError as e:
            print(f"\napp benchmark unavailable: {e}")
        else:
            report["app"] = bench_app.main([])
    print(f"\nwritten {save_report(report, 'bench', args.json)}")
    return report


if __name__ == "__main__":
    runtime.reexec_with_fast_allocator(["-m", "bench", *sys.argv[1:]])
    main()
