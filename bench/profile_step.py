"""Where a training step's time goes: per compiled operation, from JAX's profiler trace.

    python -m bench.profile_step [--shape 256,4,128,32] [--steps 3] [--top 25]

Trains one run of the shape with `lab.train` (one step per compiled call) under
`jax.profiler`, reads the trace's per-operation events (XLA CPU records one per fused
operation, "thunk") and the optimised HLO of the training program (dumped by XLA), and prints
milliseconds per step by kind of operation and for the slowest operations, with the GFLOP/s
of every matrix product. Read it with two caveats: operations that do not depend on each other
run at the same time on different cores, so two that overlap each look slower than alone;
and some products (those XLA hands to Eigen rather than to its fused library kernels) record
only their launch, their work showing up as time in whatever runs beside them.
"""

import argparse
import collections
import glob
import gzip
import json
import os
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout without installing


def _dims(shape: str) -> list[int]:
    m = re.match(r"\w+\[([\d,]*)\]", shape)
    return [int(x) for x in m.group(1).split(",") if x] if m else []


def parse_hlo(text: str) -> tuple[dict, dict]:
    """{(computation, instruction): (shape, opcode, operands, attributes)} and {computation: [names]}."""
    inst, comps, cur = {}, collections.defaultdict(list), None
    for line in text.splitlines():
        m = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{$", line)
        if m and not line.startswith(" "):
            cur = m.group(1)
            continue
        m = re.match(r"^\s*(?:ROOT )?%?([\w.\-]+) = (\S+?)(?:\{[\d,]*\})? ([\w\-]+)\((.*?)\)(.*)$", line)
        if m and cur:
            name, shape, op, args, rest = m.groups()
            inst[(cur, name)] = (shape, op, [a.strip().lstrip("%") for a in args.split(",") if a.strip()], rest)
            comps[cur].append(name)
    return inst, comps


def dot_flops(inst, comps, comp: str, names=None) -> tuple[int, str]:
    """FLOPs of the dot products in `comp` (or of the named instructions) and a description."""
    total, desc = 0, ""
    for n in names or comps.get(comp, []):
        shape, op, args, rest = inst[(comp, n)]
        if op != "dot" or len(args) < 2:
            continue
        lhs = inst.get((comp, args[0]), ("?",))[0]
        rhs = inst.get((comp, args[1]), ("?",))[0]
        contracting = re.search(r"lhs_contracting_dims=\{([\d,]*)\}", rest)
        k = 1
        for i in (contracting.group(1).split(",") if contracting else []):
            if i:
                k *= _dims(lhs)[int(i)]
        out = 1
        for d in _dims(shape):
            out *= d
        total += 2 * out * k
        desc = desc or f"{lhs} x {rhs} -> {shape}"
    return total, desc


def classify(shape: str, op: str, flops: int, name: str) -> str:
    if flops:
        return "matmul (weights)" if len(_dims(shape)) == 2 else "matmul (attention)"
    if op == "dot":
        return "matmul (async, launch only)"
    if "reduce" in name or name.startswith("ynn"):
        return "reductions and library fusions"
    return "elementwise, copies, transposes"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", default="256,4,128,32", help="width,depth,context,batch (default 256,4,128,32)")
    p.add_argument("--steps", type=int, default=3, help="profiled steps (default 3)")
    p.add_argument("--top", type=int, default=25, help="slowest operations listed (default 25)")
    args = p.parse_args(argv)
    w, d, t, b = (int(x) for x in args.shape.split(","))
    dump = tempfile.mkdtemp(prefix="xla-dump-")
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" --xla_dump_to={dump} --xla_dump_hlo_as_text"
                               " --xla_dump_hlo_pass_re=NONE").strip()
    from lab import runtime
    runtime.setup(compilation_cache=False)          # a cached program would not be compiled, so not dumped
    import jax
    from bench.bench_train import config_for
    from lab.training import train

    train(config_for(w, d, t, b, 2), chunk=1)                       # compile outside the trace
    trace_dir = tempfile.mkdtemp(prefix="trace-")
    jax.profiler.start_trace(trace_dir, create_perfetto_trace=True)
    r = train(config_for(w, d, t, b, args.steps + 1, seed=1), chunk=1)
    jax.profiler.stop_trace()

    hlo_files = sorted(glob.glob(f"{dump}/*jit__train_chunk*after_optimizations.txt"))
    if not hlo_files:
        raise SystemExit(f"error: XLA wrote no optimised HLO for the training program under {dump}")
    inst, comps = parse_hlo(Path(hlo_files[-1]).read_text())
    entry = {n: c for (c, n) in inst}
    trace = glob.glob(f"{trace_dir}/**/*.trace.json.gz", recursive=True)
    events = json.load(gzip.open(trace[0]))
    events = events["traceEvents"] if isinstance(events, dict) else events
    calls = sorted((e for e in events if e.get("ph") == "X" and e["name"] == "ThunkExecutor::Execute (wait for completion)"
                    and e.get("dur", 0) > 0), key=lambda e: e["ts"])
    # the training calls: the steps + 1 longest (a step outlasts the evaluation of 4 windows and the small
    # programs around it, also when the machine is busy and one call is stretched), in order, less the
    # first (a call's warm-up)
    steps = sorted(sorted(calls, key=lambda c: -c["dur"])[:args.steps + 1], key=lambda c: c["ts"])[1:]
    if not steps:
        raise SystemExit(f"error: the trace under {trace_dir} holds {len(calls)} program calls, too few to find "
                         f"{args.steps} training steps in; profile more steps (--steps)")
    windows = [(c["ts"], c["ts"] + c["dur"]) for c in steps]
    per_op = collections.Counter()
    for e in events:
        if e.get("ph") != "X" or e["name"] not in entry:
            continue
        if any(a <= e["ts"] <= z for a, z in windows):
            per_op[e["name"]] += e["dur"] / 1000 / len(windows)
    rows, by_kind, kind_flops = [], collections.Counter(), collections.Counter()
    for name, ms in per_op.items():
        comp = entry[name]
        shape, op, _, rest = inst[(comp, name)]
        called = re.search(r"calls=%?([\w.\-]+)", rest)
        flops, desc = dot_flops(inst, comps, called.group(1)) if called else (0, "")
        kind = classify(shape, op, flops, name)
        by_kind[kind] += ms
        kind_flops[kind] += flops
        rows.append((ms, name, shape, flops, desc, kind))
    step_ms = sum(z - a for a, z in windows) / 1000 / len(windows)
    print(f"shape {w}x{d}, ctx {t}, batch {b}: {step_ms:.1f} ms per step ({len(windows)} profiled); "
          f"steady state {r.tokens_per_s:,.0f} tok/s; operations' own times add up to {sum(by_kind.values()):.1f} ms")
    print(f"\n{'ms/step':>8}  {'GFLOP/s':>7}  kind")
    for kind, ms in by_kind.most_common():
        rate = f"{kind_flops[kind] / ms / 1e6:7.1f}" if kind_flops[kind] else " " * 7
        print(f"{ms:8.1f}  {rate}  {kind}")
    print(f"\n{'ms/step':>8}  {'GFLOP/s':>7}  operation")
    for ms, name, shape, flops, desc, kind in sorted(rows, reverse=True)[:args.top]:
        rate = f"{flops / ms / 1e6:7.1f}" if flops else " " * 7
        print(f"{ms:8.2f}  {rate}  {name} {shape} {desc}")
    return {"step_ms": step_ms, "by_kind": dict(by_kind)}


if __name__ == "__main__":
    from lab import runtime as _rt
    _rt.reexec_with_fast_allocator(["-m", "bench.profile_step", *sys.argv[1:]])
    main()
