"""`make gpu-check` (or `python -m bench --gpu-check`): how well `lab` uses the accelerator JAX sees.

One run, under five minutes of device time (`--budget-s`), one table, one JSON file (`--out`):
1. device: `jax.devices()[0]` and its bf16 and fp32 matmul peaks, measured now (a jitted chain of
   large square matmuls, median of several calls); fp32 runs at JAX's default matmul precision,
   as training does (TF32 on NVIDIA Ampere and newer);
2. train: `lab.train` tokens/s and MFU (`lab.counting.flops_per_token` x tokens/s / the measured
   peak of the same precision) at widths 256-2048, in bf16 and fp32;
3. vmap: 8 seeds through `lab.train_seeds` against one seed's tokens/s;
4. first_step: time to the first step in a new process, cold and with the persistent
   compilation cache (`lab.runtime`) warm: two child processes sharing one fresh cache folder;
5. stalls: the step time with an evaluation after every chunk and a tracker that keeps every
   event, against one final evaluation and a tracker that only reads the clock;
6. memory: each training run's peak device memory against `lab.counting.memory_bytes`;
7. two_kernels: two child processes (`XLA_PYTHON_CLIENT_PREALLOCATE=false`) training on the
   one device at once: both must finish; their tokens/s beside one of them alone.
On CPU (or with `--tiny`) every part runs on tiny models in well under a minute. A part that
fails records its error and the others still run; a part that cannot run says why in the JSON.
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from lab import runtime

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "gpu_check.json"
SECTIONS = ("device", "train", "vmap", "first_step", "stalls", "memory", "two_kernels")
# The child processes run before this process's training holds device memory; training starts no
# run past TRAIN_SHARE of the budget, which leaves time for vmap and stalls.
RUN_ORDER = ("device", "first_step", "two_kernels", "train", "vmap", "stalls", "memory")
TRAIN_SHARE = 0.75
GOALS = {  # the H200's targets, printed next to the measurements
    "bf16_mfu_width_ge_1024": ("bf16 MFU at width >= 1024", ">=", 0.40, "{:.0%}"),
    "vmap_8_seeds_over_one": ("8 seeds through vmap / one seed", ">=", 5.0, "{:g}x"),
    "warm_over_cold_first_step": ("first step, warm cache / cold", "<", 0.10, "{:.0%}"),
}


@dataclass(frozen=True)
class Plan:
    """Sizes: (width, depth, context, batch) shapes, steps per compiled call, matmul size."""
    tiny: bool
    train_shapes: tuple
    small: tuple            # vmap, stalls and the two kernels
    first_step_shape: tuple
    chunk: int | None       # None: lab's own choice (lab.training.auto_chunk)
    peak_n: int
    peak_inner: int         # matmuls chained in one compiled call
    peak_reps: int
    kernel_calls: int       # compiled calls per timed run of a kernel child
    stall_eval_tokens: int


FULL = Plan(tiny=False, train_shapes=((256, 4, 256, 64), (512, 8, 512, 32), (1024, 12, 512, 32), (2048, 16, 1024, 4)),
            small=(256, 4, 256, 8), first_step_shape=(512, 8, 512, 16), chunk=None, peak_n=8192, peak_inner=8,
            peak_reps=7, kernel_calls=32, stall_eval_tokens=16_384)
TINY = Plan(tiny=True, train_shapes=((32, 1, 32, 8), (64, 1, 64, 8)), small=(32, 1, 32, 8),
            first_step_shape=(32, 1, 32, 8), chunk=2, peak_n=256, peak_inner=4, peak_reps=5, kernel_calls=16,
            stall_eval_tokens=1024)


def heads_for(width: int) -> int:
    return max(2, width // 64)          # heads of 64, the size GPU attention kernels like


def run_config(shape, steps: int, precision: str = "auto", *, evals: int = 1, eval_tokens: int | None = None, seed=0):
    from lab.config import ModelConfig, OptimConfig, RunConfig
    w, d, t, b = shape
    return RunConfig(model=ModelConfig(width=w, depth=d, heads=heads_for(w), context=t),
                     optim=OptimConfig(name="adamw", lr=1e-3), tokens=steps * b * t, batch=b, seed=seed,
                     evals=evals, eval_tokens=eval_tokens or 4 * t, precision=precision)


def chunk_for(plan: Plan, cfg) -> int:
    from lab.training import auto_chunk
    return plan.chunk or auto_chunk(cfg)


def timed_steps(chunk: int, calls: int = 8) -> int:
    """The first call (compile and one step) plus `calls` whole chunks: lab.training.chunk_bounds gives
    full-size calls from 8 on, and tokens/s counts the chunks after the first."""
    return 1 + calls * chunk


def shape_name(shape) -> str:
    w, d, t, b = shape
    return f"{w}x{d}, ctx {t}, batch {b}"


# --- 1. device and matmul peaks ----------------------------------------------------------------

def matmul_peak(n: int, dtype: str, inner: int, reps: int) -> dict:
    """FLOP/s of `inner` chained n x n matmuls in one jitted call, median of `reps` calls."""
    import jax
    import jax.numpy as jnp
    import jax.random as jr
    ka, kb = jr.split(jr.PRNGKey(0))
    a = jr.normal(ka, (n, n), jnp.float32).astype(dtype)
    b = (jr.normal(kb, (n, n), jnp.float32) / math.sqrt(n)).astype(dtype)   # keeps the chain's scale
    chain = jax.jit(lambda a, b: jax.lax.fori_loop(0, inner, lambda i, x: x @ b, a))
    chain(a, b).block_until_ready()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        chain(a, b).block_until_ready()
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {"n": n, "chained": inner, "reps": reps, "median_s": median, "flops_per_s": 2 * n ** 3 * inner / median}


def section_device(ctx) -> dict:
    import jax
    d = jax.devices()[0]
    stats = d.memory_stats()
    out = {"device": str(d), "platform": d.platform, "device_kind": d.device_kind, "device_count": jax.device_count(),
           "jax": jax.__version__, "tiny": ctx.plan.tiny,
           "bytes_limit": int(stats["bytes_limit"]) if stats and stats.get("bytes_limit") else None,
           "fp32_matmul_precision": jax.config.jax_default_matmul_precision or "default (TF32 on NVIDIA Ampere+)"}
    for precision, dtype in (("bf16", "bfloat16"), ("fp32", "float32")):
        out[f"{precision}_peak"] = matmul_peak(ctx.plan.peak_n, dtype, ctx.plan.peak_inner, ctx.plan.peak_reps)
        ctx.peaks[precision] = out[f"{precision}_peak"]["flops_per_s"]
    return out


# --- 2. training throughput and MFU (6. memory is read around the same runs) --------------------

def device_memory() -> dict | None:
    import jax
    return jax.devices()[0].memory_stats()


def section_train(ctx) -> dict:
    from lab.counting import flops_per_token, memory_bytes
    from lab.training import train
    rows = []
    jobs = [(shape, p) for shape in ctx.plan.train_shapes for p in ("bf16", "fp32")]  # growing memory, mostly
    for shape, precision in jobs:
        w, d, t, b = shape
        row = {"width": w, "depth": d, "context": t, "batch": b, "heads": heads_for(w), "precision": precision}
        rows.append(row)
        if time.perf_counter() > ctx.train_deadline:
            row.update(status="skipped", reason=f"past {TRAIN_SHARE:.0%} of the time budget; raise --budget-s "
                                                "(a second run is faster: the compilation cache is warm)")
            continue
        try:
            cfg = run_config(shape, 1, precision)
            chunk = chunk_for(ctx.plan, cfg)
            cfg = run_config(shape, timed_steps(chunk), precision)
            before = device_memory()
            r = train(cfg, chunk=chunk)
            after = device_memory()
            fpt = flops_per_token(cfg.model)
            peak = ctx.peaks.get(precision)
            row.update(status=r.status, params=r.params_total, chunk=chunk, steps=r.steps,
                       flops_per_token=fpt, tokens_per_s=r.tokens_per_s, first_step_s=r.first_step_s,
                       model_flops_per_s=fpt * r.tokens_per_s, mfu=fpt * r.tokens_per_s / peak if peak else None,
                       memory_estimate_bytes=memory_bytes(cfg), memory=memory_reading(before, after))
            if not peak:
                row["mfu_reason"] = "no measured peak: the device section did not run"
            del r
        except Exception as e:  # one shape failing (out of memory, say) leaves the others
            row.update(status="error", error=f"{type(e).__name__}: {e}"[:2000])
    if rows and not any("tokens_per_s" in r for r in rows):
        first = rows[0]
        return {"rows": rows, "status": first["status"] if first["status"] == "skipped" else "error",
                "error": f"no training run finished; the first: {first.get('error') or first.get('reason')}"}
    return {"rows": rows}


def memory_reading(before: dict | None, after: dict | None) -> dict:
    """The device's peak while a run was live. JAX cannot reset the peak, so it is this run's only
    if the high-water mark rose during it; otherwise an earlier, larger run set it."""
    if after is None:
        import jax
        return {"peak_bytes_in_use": None, "reason": f"the {jax.devices()[0].platform} backend keeps no allocator "
                "statistics (memory_stats() is None); run on a GPU or TPU"}
    old, new = (before or {}).get("peak_bytes_in_use", 0), after.get("peak_bytes_in_use")
    if new is None:
        return {"peak_bytes_in_use": None, "reason": "memory_stats() has no peak_bytes_in_use on this backend"}
    if new <= old:
        return {"peak_bytes_in_use": None, "reason": f"below an earlier run's high-water mark ({old / 2**30:.2f} GiB); "
                "the device's peak cannot be reset: run this shape alone to read it"}
    return {"peak_bytes_in_use": int(new), "bytes_in_use_before": int((before or {}).get("bytes_in_use", 0))}


def section_memory(ctx) -> dict:
    train = ctx.report.get("train", {})
    if train.get("status") != "ok":
        return {"status": "unavailable", "reason": f"no training runs to read: the train section is "
                f"{train.get('status', 'not run')}"}
    rows = []
    for r in train["rows"]:
        if "memory" not in r:
            continue
        m = r["memory"]
        peak, est = m.get("peak_bytes_in_use"), r["memory_estimate_bytes"]
        rows.append({"width": r["width"], "precision": r["precision"], "peak_bytes_in_use": peak,
                     "estimate_bytes": est, "peak_over_estimate": peak / est if peak else None,
                     **({"reason": m["reason"]} if "reason" in m else {})})
    return {"rows": rows, "note": "estimate: lab.counting.memory_bytes (fp32 state and activations, meant to err "
            "high); peak: memory_stats()['peak_bytes_in_use'], the data and earlier live arrays included"}


# --- 3. vmap over seeds -------------------------------------------------------------------------

def section_vmap(ctx, seeds: int = 8, rounds: int = 2) -> dict:
    from lab.training import train, train_seeds
    cfg = run_config(ctx.plan.small, 1)
    chunk = chunk_for(ctx.plan, cfg)
    cfg = run_config(ctx.plan.small, timed_steps(chunk))
    one, many = [], []
    for r in range(rounds):                       # interleaved; the first call of each run (compile) not counted
        one.append(train(cfg.replace(seed=r), chunk=chunk).tokens_per_s)
        many.append(train_seeds(cfg, list(range(r * seeds, (r + 1) * seeds)), chunk=chunk)[0].tokens_per_s)
    out = {"shape": shape_name(ctx.plan.small), "seeds": seeds, "chunk": chunk, "steps": cfg.steps,
           "one_seed_tokens_per_s": statistics.median(one), "vmapped_tokens_per_s": statistics.median(many),
           "one_seed_rounds": one, "vmapped_rounds": many}
    out["ratio"] = out["vmapped_tokens_per_s"] / out["one_seed_tokens_per_s"]
    return out


# --- 5. evaluation and event relay between chunks -----------------------------------------------

class ClockTracker:
    """Reads the clock at each event, nothing else (the bare loop)."""

    def __init__(self):
        self.times, self.events = [], []

    def start(self, config, info):
        pass

    def log(self, event):
        self.times.append(time.perf_counter())
        self.events.append(event)

    def finish(self, result):
        pass


class RelayTracker(ClockTracker):
    """Also does what the app and the run store do with each event: keep it, turn it into metrics, serialise."""

    def __init__(self):
        super().__init__()
        self.lines = []

    def log(self, event):
        self.lines.append(json.dumps({"run": event.run_id, "seed": event.seed, **event.metrics()}))
        super().log(event)


def chunk_timings(tracker: ClockTracker, per_step: int) -> tuple[list[float], list[float]]:
    """Per-step wall time between consecutive events, and the host gap per chunk (the interval
    less the chunk's own compiled call), over the inner chunks (not the first, not the last:
    the last always evaluates)."""
    step_s, gap_s = [], []
    ev, t = tracker.events, tracker.times
    for c in range(1, len(t) - 1):
        n = ev[c].step - ev[c - 1].step
        interval = t[c] - t[c - 1]
        call = n * per_step / ev[c].tokens_per_s
        step_s.append(interval / n)
        gap_s.append(interval - call)
    return step_s, gap_s


def section_stalls(ctx, rounds: int = 3, calls: int = 16) -> dict:
    from lab.training import train
    base = run_config(ctx.plan.small, 1, eval_tokens=ctx.plan.stall_eval_tokens)
    chunk = chunk_for(ctx.plan, base)
    steps = timed_steps(chunk, calls)
    variants = {"bare": (1, ClockTracker), "relay": (1, RelayTracker), "eval_and_relay": (steps, RelayTracker)}
    pooled = {k: ([], []) for k in variants}
    for r in range(rounds):
        for name, (evals, make) in variants.items():
            tracker = make()
            cfg = run_config(ctx.plan.small, steps, evals=evals, eval_tokens=ctx.plan.stall_eval_tokens, seed=r)
            train(cfg, trackers=[tracker], chunk=chunk)
            s, g = chunk_timings(tracker, cfg.tokens_per_step)
            pooled[name][0].extend(s)
            pooled[name][1].extend(g)
    out = {"shape": shape_name(ctx.plan.small), "chunk": chunk, "steps": steps,
           "eval_tokens": ctx.plan.stall_eval_tokens,
           "variants": {"bare": "one evaluation (at the end), a tracker that reads the clock",
                        "relay": "one evaluation, a tracker that keeps and serialises every event",
                        "eval_and_relay": "an evaluation after every chunk and the serialising tracker"}}
    for name, (s, g) in pooled.items():
        out[f"{name}_step_ms"] = 1e3 * statistics.median(s)
        out[f"{name}_host_gap_ms_per_chunk"] = 1e3 * statistics.median(g)
    out["relay_overhead"] = out["relay_step_ms"] / out["bare_step_ms"] - 1
    out["relative_overhead"] = out["eval_and_relay_step_ms"] / out["bare_step_ms"] - 1
    return out


# --- child processes: 4. first step, 7. two kernels ---------------------------------------------

def child_env(**extra) -> dict:
    path = os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))
    return dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false", PYTHONPATH=path, **extra)


def child_cmd(spec: dict) -> list[str]:
    return [sys.executable, "-m", "bench.gpu_check", "--child", json.dumps(spec)]


def child_result(stdout: str, stderr: str, rc: int) -> dict:
    lines = [ln for ln in stdout.strip().splitlines() if ln.startswith("{")]
    if rc or not lines:
        raise RuntimeError(f"child process exited with {rc}: {stderr.strip()[-1500:] or stdout[-1500:]}")
    return json.loads(lines[-1])


def wait_for(*paths: Path, timeout: float = 300) -> None:
    end = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        if time.monotonic() > end:
            raise TimeoutError(f"waited {timeout:.0f} s for {', '.join(p.name for p in paths)}: the other child died")
        time.sleep(0.005)


def child_main(spec: dict) -> None:
    """A child's work; prints one JSON line."""
    runtime.setup()
    from lab.training import train
    cfg = run_config(tuple(spec["shape"]), spec["steps"], seed=spec.get("index", 0))
    if spec["mode"] == "first_step":
        r = train(cfg, chunk=spec.get("chunk"))
        print(json.dumps({"first_step_s": r.first_step_s, "run_wall_s": r.wall_s, "status": r.status}))
        return
    folder, i, chunk = Path(spec["folder"]), spec["index"], spec["chunk"]
    train(cfg.replace(tokens=cfg.tokens_per_step * (chunk + 1)), chunk=chunk)     # compile: the same program
    (folder / f"ready{i}").touch()
    wait_for(folder / "ready0", folder / "ready1")
    out = {"index": i}
    if i == 0:                                                                   # alone, while the other waits
        out["alone_tokens_per_s"] = train(cfg, chunk=chunk).tokens_per_s
        (folder / "go").touch()
    wait_for(folder / "go")
    t0 = time.time()
    r = train(cfg, chunk=chunk)
    stats = device_memory()
    out.update(tokens_per_s=r.tokens_per_s, status=r.status, start=t0, end=time.time(),
               peak_bytes_in_use=stats.get("peak_bytes_in_use") if stats else None)
    print(json.dumps(out))


def section_first_step(ctx) -> dict:
    shape = ctx.plan.first_step_shape
    spec = {"mode": "first_step", "shape": list(shape), "steps": 2, "chunk": ctx.plan.chunk}
    out = {"shape": shape_name(shape), "how": "two child processes, one after the other, sharing a fresh "
           "SCALING_LAB_JAX_CACHE folder: the first compiles (cold), the second reads the cache (warm)"}
    cache = ctx.cache_dir()
    if any(Path(cache).iterdir()):
        raise RuntimeError(f"the children's compilation cache {cache} is not empty: the cold run would be warm")
    for label in ("cold", "warm"):
        t0 = time.perf_counter()
        res = subprocess.run(child_cmd(spec), capture_output=True, text=True, cwd=ROOT,
                             env=child_env(SCALING_LAB_JAX_CACHE=cache), timeout=ctx.child_timeout())
        r = child_result(res.stdout, res.stderr, res.returncode)
        out[f"{label}_first_step_s"] = r["first_step_s"]
        out[f"{label}_process_s"] = time.perf_counter() - t0
        if label == "cold":
            files = [p for p in Path(cache).rglob("*") if p.is_file()]
            out["cache_entries"], out["cache_bytes"] = len(files), sum(p.stat().st_size for p in files)
            if not files:
                raise RuntimeError(f"the cold run wrote nothing to {cache}: the persistent compilation cache is "
                                   "off (see lab/runtime.py setup; is SCALING_LAB_JAX_CACHE=0 set?)")
    out["warm_over_cold"] = out["warm_first_step_s"] / out["cold_first_step_s"]
    return out


def section_two_kernels(ctx) -> dict:
    shape = ctx.plan.small
    cfg = run_config(shape, 1)
    chunk = chunk_for(ctx.plan, cfg)
    steps = timed_steps(chunk, ctx.plan.kernel_calls)
    with tempfile.TemporaryDirectory(prefix="gpu-check-kernels-") as folder:
        procs = [subprocess.Popen(child_cmd({"mode": "kernel", "shape": list(shape), "steps": steps, "chunk": chunk,
                                             "folder": folder, "index": i}),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                  env=child_env(SCALING_LAB_JAX_CACHE=ctx.cache_dir()))
                 for i in range(2)]
        kernels, errors = [], []
        try:
            for i, p in enumerate(procs):
                so, se = p.communicate(timeout=ctx.child_timeout())
                try:
                    kernels.append(child_result(so, se, p.returncode))
                except RuntimeError as e:
                    errors.append(f"kernel {i}: {e}")
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    out = {"shape": shape_name(shape), "chunk": chunk, "steps": steps, "preallocate": "false",
           "both_finished": not errors and all(k["status"] == "done" for k in kernels), "kernels": kernels}
    if errors:
        out.update(status="error", error="; ".join(errors))
        return out
    alone = kernels[0]["alone_tokens_per_s"]
    start, end = max(k["start"] for k in kernels), min(k["end"] for k in kernels)
    span = max(k["end"] for k in kernels) - min(k["start"] for k in kernels)
    out.update(alone_tokens_per_s=alone, tokens_per_s=[k["tokens_per_s"] for k in kernels],
               sum_over_alone=sum(k["tokens_per_s"] for k in kernels) / alone,
               overlap=max(0.0, end - start) / span if span > 0 else 0.0)
    return out


# --- the run --------------------------------------------------------------------------------------

class Context:
    def __init__(self, plan: Plan, budget_s: float):
        self.plan, self.budget_s = plan, budget_s
        self.t0 = time.perf_counter()
        self.deadline = self.t0 + budget_s
        self.train_deadline = self.t0 + TRAIN_SHARE * budget_s
        self.peaks: dict[str, float] = {}
        self.report: dict = {}
        self._cache = None

    def cache_dir(self) -> str:
        """The children's compilation cache: fresh for first_step's cold run, then kept for the two
        kernels (in tiny mode their programs are the same, so they start without compiling)."""
        if self._cache is None:
            self._cache = tempfile.TemporaryDirectory(prefix="gpu-check-cache-")
        return self._cache.name

    def close(self):
        if self._cache is not None:
            self._cache.cleanup()

    def child_timeout(self) -> float:
        return max(30.0, self.deadline - time.perf_counter())


SECTION_FUNCS = {"device": section_device, "train": section_train, "vmap": section_vmap,
                 "first_step": section_first_step, "stalls": section_stalls, "memory": section_memory,
                 "two_kernels": section_two_kernels}


def run_section(ctx: Context, name: str, fn) -> dict:
    """`fn(ctx)` as a section: its error recorded rather than raised, skipped past the budget."""
    t0 = time.perf_counter()
    if t0 > ctx.deadline:
        return {"status": "skipped", "reason": f"the time budget ({ctx.budget_s:g} s) was spent before this section; "
                f"raise --budget-s or run it alone with --only {name}"}
    try:
        out = fn(ctx)
        out.setdefault("status", "ok")
    except Exception as e:
        out = {"status": "error", "error": f"{type(e).__name__}: {e}"[:3000],
               "traceback": traceback.format_exc()[-3000:]}
    out["seconds"] = time.perf_counter() - t0
    return out


def goals(report: dict) -> dict:
    rows = [r for r in report.get("train", {}).get("rows", []) if r.get("precision") == "bf16" and r["width"] >= 1024
            and r.get("mfu") is not None]
    measured = {
        "bf16_mfu_width_ge_1024": (min(r["mfu"] for r in rows) if rows else None,   # the worst of them
                                   "no bf16 run at width >= 1024 finished"
                                   + (" (tiny mode trains smaller widths)" if report.get("tiny") else "")),
        "vmap_8_seeds_over_one": (report.get("vmap", {}).get("ratio"), "the vmap section did not finish"),
        "warm_over_cold_first_step": (report.get("first_step", {}).get("warm_over_cold"),
                                      "the first_step section did not finish"),
    }
    out = {}
    for key, (label, op, target, form) in GOALS.items():
        value, why = measured[key]
        met = None if value is None else (value >= target if op == ">=" else value < target)
        if report.get("tiny") and value is not None:   # tiny models on a CPU say nothing about the H200
            met, why = None, "not judged in tiny mode: the goals are for the full sizes on the H200"
        out[key] = {"goal": f"{label} {op} {form.format(target)}", "target": target, "measured": value, "met": met,
                    **({"reason": why} if met is None else {})}
    return out


def clean(x):
    """JSON-safe: non-finite floats as null."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    return x


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m bench --gpu-check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="tiny models (the default on CPU)")
    p.add_argument("--full", action="store_true", help="full sizes even on CPU (slow: many minutes)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help=f"JSON output (default {DEFAULT_OUT.relative_to(ROOT)})")
    p.add_argument("--budget-s", type=float, default=270.0,
                   help="total time guard in seconds: parts not started by then are skipped with a note")
    p.add_argument("--only", default="", help=f"comma list of parts: {','.join(SECTIONS)} (device always runs)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child_main(json.loads(args.child))
        return {}
    only = set(filter(None, args.only.split(",")))
    if only - set(SECTIONS):
        p.error(f"unknown part(s) {', '.join(sorted(only - set(SECTIONS)))}; choose from {', '.join(SECTIONS)}")
    if args.tiny and args.full:
        p.error("--tiny and --full contradict each other; pass one")
    runtime.setup()
    import jax
    platform = jax.devices()[0].platform
    plan = TINY if args.tiny or (platform == "cpu" and not args.full) else FULL
    ctx = Context(plan, args.budget_s)
    print(f"gpu-check on {jax.devices()[0]} ({platform}{', tiny models' if plan.tiny else ''}), "
          f"budget {args.budget_s:g} s", flush=True)
    try:
        for name in RUN_ORDER:
            if name == "device" or not only or name in only:
                ctx.report[name] = run_section(ctx, name, SECTION_FUNCS[name])
            else:
                ctx.report[name] = {"status": "skipped", "reason": "not in --only"}
            s = ctx.report[name]
            print(f"  {name}: {s['status']}" + (f" ({s.get('seconds', 0):.1f} s)" if "seconds" in s else "")
                  + (f": {s.get('error') or s.get('reason')}" if s["status"] != "ok" else ""), flush=True)
    finally:
        ctx.close()
    report = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "tiny": plan.tiny, "budget_s": args.budget_s,
              **{k: ctx.report[k] for k in SECTIONS}}
    report["goals"] = goals(report)
    report["elapsed_s"] = time.perf_counter() - ctx.t0
    report["table"] = table(report)
    print("\n" + report["table"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(clean(report), indent=2))
    print(f"\nwritten {out}")
    return report


# --- the table ------------------------------------------------------------------------------------

def rate(x: float) -> str:
    for unit, scale in (("PFLOP/s", 1e15), ("TFLOP/s", 1e12), ("GFLOP/s", 1e9)):
        if x >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x / 1e6:.3g} MFLOP/s"


def gib(x) -> str:
    return "—" if x is None else f"{x / 2**30:.2f} GiB"


def why(s: dict) -> str:
    return f"{s.get('status')}: {(s.get('error') or s.get('reason') or '')[:100]}"


def at(s: dict) -> str:
    return f" ({s['shape']})" if "shape" in s else ""


def table(report: dict) -> str:
    g = report["goals"]

    def verdict(key):
        m = g[key]["met"]
        return f"{g[key]['goal']}: " + ("met" if m else "missed" if m is not None else "n/a")

    dev = report["device"]
    lines = ["| check | measured | goal (H200) |", "| --- | --- | --- |"]
    if dev.get("status") == "ok":
        lines.append(f"| device | {dev['device_kind']} ({dev['platform']}{', tiny' if dev['tiny'] else ''}) | |")
        lines.append(f"| matmul peak, {dev['bf16_peak']['n']}² | bf16 {rate(dev['bf16_peak']['flops_per_s'])}, "
                     f"fp32 {rate(dev['fp32_peak']['flops_per_s'])} | |")
    else:
        lines.append(f"| device | {why(dev)} | |")
    tr = report["train"]
    best = [r for r in tr.get("rows", []) if r.get("precision") == "bf16" and r.get("mfu") is not None]
    if g["bf16_mfu_width_ge_1024"]["measured"] is not None:
        lines.append(f"| bf16 MFU, width ≥ 1024 (the lowest) | {g['bf16_mfu_width_ge_1024']['measured']:.1%} | "
                     f"{verdict('bf16_mfu_width_ge_1024')} |")
    elif best:
        top = max(best, key=lambda r: r["width"])
        lines.append(f"| bf16 MFU, widest run ({top['width']}) | {top['mfu']:.1%} | "
                     f"{verdict('bf16_mfu_width_ge_1024')} |")
    else:
        lines.append(f"| bf16 MFU | {why(tr) if tr.get('status') != 'ok' else 'no run finished'} | "
                     f"{verdict('bf16_mfu_width_ge_1024')} |")
    vm = report["vmap"]
    lines.append(f"| vmap, {vm.get('seeds', 8)} seeds / 1{at(vm)} | "
                 + (f"{vm['ratio']:.2f}× ({vm['vmapped_tokens_per_s']:,.0f} vs "
                    f"{vm['one_seed_tokens_per_s']:,.0f} tok/s)"
                    if vm.get("status") == "ok" else why(vm)) + f" | {verdict('vmap_8_seeds_over_one')} |")
    fs = report["first_step"]
    lines.append(f"| first step, cold / warm cache{at(fs)} | "
                 + (f"{fs['cold_first_step_s']:.2f} s / {fs['warm_first_step_s']:.2f} s ({fs['warm_over_cold']:.1%})"
                    if fs.get("status") == "ok" else why(fs)) + f" | {verdict('warm_over_cold_first_step')} |")
    st = report["stalls"]
    lines.append("| eval after every chunk + event relay vs bare | "
                 + (f"{st['relative_overhead']:+.1%} per step (relay alone {st['relay_overhead']:+.1%}); host gap "
                    f"{st['bare_host_gap_ms_per_chunk']:.2f} → "
                    f"{st['eval_and_relay_host_gap_ms_per_chunk']:.2f} ms/chunk"
                    if st.get("status") == "ok" else why(st)) + " | |")
    mem = report["memory"]
    if mem.get("status") == "ok":
        read = [r for r in mem["rows"] if r["peak_bytes_in_use"]]
        lines.append("| peak device memory / estimate | " + (
            ", ".join(f"{r['width']} {r['precision']}: {r['peak_over_estimate']:.2f}" for r in read) if read
            else (mem["rows"][0].get("reason", "no reading") if mem["rows"] else "no runs")) + " | |")
    else:
        lines.append(f"| peak device memory | {why(mem)} | |")
    tk = report["two_kernels"]
    lines.append("| two kernels at once | " + (
        f"both finished: {' + '.join(f'{x:,.0f}' for x in tk['tokens_per_s'])} tok/s "
        f"({tk['sum_over_alone']:.2f}× one alone, overlap {tk['overlap']:.0%})" if tk.get("status") == "ok"
        else why(tk)) + " | both finish |")
    lines += ["", "| width | depth | ctx | batch | precision | tok/s | model FLOP/s | MFU | peak memory | estimate |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in tr.get("rows", []):
        head = f"| {r['width']} | {r['depth']} | {r['context']} | {r['batch']} | {r['precision']} |"
        if "tokens_per_s" in r:
            mfu = f"{r['mfu']:.1%}" if r.get("mfu") is not None else "—"
            lines.append(f"{head} {r['tokens_per_s']:,.0f} | {rate(r['model_flops_per_s'])} | {mfu} | "
                         f"{gib(r['memory'].get('peak_bytes_in_use'))} | {gib(r['memory_estimate_bytes'])} |")
        else:
            lines.append(f"{head} {why(r)} | | | | |")
    if tr.get("status") != "ok":
        lines.append(f"| train: {why(tr)} | | | | | | | | | |")
    return "\n".join(lines)


if __name__ == "__main__":
    if "--child" not in sys.argv:
        runtime.reexec_with_fast_allocator(["-m", "bench.gpu_check", *sys.argv[1:]])
    main()
