"""The training loop: chunks of steps per compiled call, evaluation, divergence, cancel, seeds.

`train(config)` trains one run; `train_seeds(config, seeds)` trains several seeds of one
shape at once through `vmap` (one code path: a single run is a batch of one seed, whose
step alone skips the `vmap`: XLA kept the axis of one and ran 15 % slower, bench/README.md).

Each call of the compiled `_train_chunk` runs `chunk` optimizer steps under `lax.scan`, so
Python overhead does not dominate tiny models; between calls the loop evaluates, reports an
`Event` to its trackers and checks the cancel flag. Hyperparameters, step counts and seeds
are data, not static arguments: a second run of an already-compiled shape starts at once.
"""

import collections
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax

from lab import estimate, optim
from lab.config import ConfigError, ModelConfig, RunConfig
from lab.counting import flops_per_token, param_counts
from lab.data import bits_per_byte, epochs, eval_windows, load_dataset, sample_batch
from lab.device import device_name, memory_limit, platform
from lab.models import make_model
from lab.trackers import Event, RunResult, Tracker, cancel_requested

CHUNK_SECONDS = 1.0          # aim for a compiled call this long: Stop within a second, little overhead
TRACES = collections.Counter()  # how often each compiled function was traced (tests check reuse)
ASSUMED_FLOPS = {"cpu": 6e10, "gpu": 1e14, "tpu": 1e14}  # effective FLOP/s, only to size chunks
MAX_CHUNK = 16               # steps per compiled call, at most
TRAIN_LOSS_STEPS = 32        # a run's train_loss: the mean over its last this many steps (a chunk can be 1 step)
MIN_IMPROVEMENT = 1e-4       # nats/token: a smaller fall of the validation loss does not reset `patience`


def explode_threshold(vocab: int) -> float:
    """A loss above twice the uniform guess (2 ln V nats) has blown up: the run diverged."""
    return 2.0 * math.log(vocab)


def check_memory(cfg: RunConfig, seeds: int = 1) -> None:
    """Refuse, before allocating anything, a run whose estimate exceeds 90 % of the device's memory."""
    estimate.check_memory(cfg, seeds, estimate.Speed(device=device_name(), platform=platform(), flops_per_s=0.0,
                                                     memory_bytes=memory_limit()))


def compute_dtype(cfg: RunConfig):
    if cfg.precision == "bf16" or (cfg.precision == "auto" and platform() in ("gpu", "tpu")):
        return jnp.bfloat16
    return jnp.float32


def auto_chunk(cfg: RunConfig) -> int:
    """Steps per compiled call: a power of two near CHUNK_SECONDS of work on this platform.
    It depends on the shape alone, so runs of one shape share the compiled program.

    Each compiled call pays a fixed cost on its first step (measured on CPU: about 100 ms at
    width 128, the same as a third of a step), so several steps per call pay off; rounding up
    keeps mid-sized models at 2-4 steps per call."""
    step_flops = flops_per_token(cfg.model) * cfg.tokens_per_step
    target = CHUNK_SECONDS * ASSUMED_FLOPS.get(platform(), 6e10)
    return int(2 ** np.clip(math.ceil(math.log2(max(target / step_flops, 1.0))), 0, math.log2(MAX_CHUNK)))


def _cast(tree, dtype):
    return jax.tree.map(lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a, tree)


def loss_fn(params, static, x, y, dtype):
    """Mean next-token cross-entropy in nats; matmuls in `dtype`, the softmax in fp32."""
    return objective(params, static, x, y, dtype, 0.0)[1]


def objective(params, static, x, y, dtype, z_loss):
    """Returns (what training minimises, the mean cross-entropy): the objective is the cross-entropy
    plus z·mean(log Z)², Z the softmax normaliser (PaLM's z-loss, Chowdhery et al. 2022). `z_loss` is data, so a run
    with another weight reuses the compiled step; at 0 the gradient is the cross-entropy's."""
    model = eqx.combine(_cast(params, dtype), static)
    logits = model(x).astype(jnp.float32)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    log_z = jax.nn.logsumexp(logits, axis=-1)
    return ce + z_loss * jnp.mean(log_z ** 2), ce


@eqx.filter_jit
def _train_chunk(params, opt_state, static, data, keys, alive, dstep, step0, stop, sched, z_loss,
                 *, tx, chunk, batch, context, dtype, explode):
    """Steps `step0 .. stop - 1` (at most `chunk`) for every seed (leading axis of params,
    opt_state, keys, alive).

    The scan always has `chunk` iterations; those at or beyond `stop` are skipped (lax.cond),
    so the step count and the length of each call are data. A seed whose
    loss turns non-finite or explodes keeps its last good weights and is marked dead with
    the step (`dstep`) where it happened.
    """
    TRACES["train_chunk"] += 1  # runs at trace time only

    def one_seed(p, s, key, ok, step):
        x, y = sample_batch(data, jr.fold_in(key, step), batch, context)
        (_, loss), grads = jax.value_and_grad(objective, has_aux=True)(p, static, x, y, dtype, z_loss)
        s_new = optim.with_learning_rate(s, optim.learning_rate(step, sched))
        updates, s_new = tx.update(grads, s_new, p)
        p_new = optax.apply_updates(p, updates)
        good = ok & jnp.isfinite(loss) & (loss < explode)
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(good, a, b), new, old)
        return keep(p_new, p), keep(s_new, s), loss, good

    def body(carry, i):
        p, s, ok, ds = carry
        step = step0 + i

        def run(args):
            p, s, ok, ds = args
            if keys.shape[0] == 1:   # one seed: no vmap, so XLA sees plain matrices, not batches of one
                squeeze = lambda t: jax.tree.map(lambda a: a[0], t)
                out = one_seed(squeeze(p), squeeze(s), keys[0], ok[0], step)
                p, s, loss, good = jax.tree.map(lambda a: a[None], out)
            else:
                p, s, loss, good = jax.vmap(one_seed, in_axes=(0, 0, 0, 0, None))(p, s, keys, ok, step)
            ds = jnp.where(ok & ~good, step, ds)
            return (p, s, good, ds), jnp.where(ok, loss, jnp.nan)

        def skip(args):
            return args, jnp.full(ok.shape, jnp.nan, jnp.float32)

        return jax.lax.cond(step < stop, run, skip, (p, s, ok, ds))

    (params, opt_state, alive, dstep), losses = jax.lax.scan(body, (params, opt_state, alive, dstep),
                                                             jnp.arange(chunk))
    return params, opt_state, alive, dstep, losses


@eqx.filter_jit
def _init(m: ModelConfig, tx, init_keys):
    """Every seed's initial weights and optimizer state, as one compiled program per shape: run
    eagerly, each random draw of a new shape compiled on its own (at width 16 on CPU, 3.2 s of a
    9.6 s run; compiled together 0.3 s). The state's hyperparameters are placeholders until the
    run writes its own (`lab.optim.hyperparams`)."""
    models = eqx.filter_vmap(lambda k: make_model(m, key=k))(init_keys)
    params, static = eqx.partition(models, eqx.is_inexact_array)
    return params, static, jax.vmap(tx.init)(params)


@eqx.filter_jit
def _evaluate(params, static, windows, *, dtype):
    """Mean validation loss (nats/token) per seed over fixed windows, in batches of 64."""

    def one_seed(p):
        def window_loss(w):
            return loss_fn(p, static, w[None, :-1], w[None, 1:], dtype)

        return jax.lax.map(window_loss, windows, batch_size=64).mean()

    return jax.vmap(one_seed)(params)


def chunk_bounds(steps: int, chunk: int) -> list[tuple[int, int]]:
    """Where each compiled call starts and stops. The first call does a single step, so that
    `first_step_s` measures the time to the first step (trace, compile, one step); the others
    do up to `chunk` steps, fewer for short runs, which still get about 8 updates."""
    size = max(1, min(chunk, math.ceil((steps - 1) / 8)))
    bounds = [(0, 1)]
    start = 1
    while start < steps:
        bounds.append((start, min(start + size, steps)))
        start = bounds[-1][1]
    return bounds


def _eval_after(chunk_index: int, n_chunks: int, evals: int) -> bool:
    """Spread `evals` evaluations over the chunks; the last chunk always evaluates."""
    if chunk_index == n_chunks - 1:
        return True
    return math.floor((chunk_index + 1) * evals / n_chunks) > math.floor(chunk_index * evals / n_chunks)


class _Stopper:
    """`target_loss` and `patience`: which seeds stop after a scheduled evaluation, and why.

    Each seed stops on its own: its weights freeze (it leaves `alive`, so the compiled steps skip
    it) while the other seeds of the group go on; the loop ends once no seed is left training."""

    def __init__(self, config: RunConfig, n: int):
        self.target, self.patience = config.target_loss, config.patience
        self.best = np.full(n, np.inf)
        self.waited = np.zeros(n, int)
        self.why: list[str | None] = [None] * n      # "target" or "patience" once stopped
        self.step: list[int | None] = [None] * n     # the step it stopped at
        self.eval_loss = np.full(n, np.nan)          # its validation loss then

    @property
    def stopped(self) -> np.ndarray:
        return np.array([w is not None for w in self.why])

    def update(self, eval_loss: np.ndarray, alive: np.ndarray, step: int) -> np.ndarray:
        """After a scheduled evaluation at `step`: the seeds that stop now (a boolean mask)."""
        now = np.zeros(len(self.why), bool)
        if not (self.target > 0 or self.patience > 0):
            return now
        for i, loss in enumerate(eval_loss):
            if self.why[i] is not None or not alive[i] or not np.isfinite(loss):
                continue
            if loss < self.best[i] - MIN_IMPROVEMENT:
                self.best[i], self.waited[i] = loss, 0
            else:
                self.waited[i] += 1
            if self.target > 0 and loss <= self.target:
                self.why[i] = "target"
            elif self.patience > 0 and self.waited[i] >= self.patience:
                self.why[i] = "patience"
            if self.why[i] is not None:
                self.step[i], self.eval_loss[i], now[i] = step, loss, True
        return now


@dataclass
class Branch:
    """Where training stood after `step` steps: what a WSD cooldown continues from (`train_seeds`'s
    `branch_at` and `resume`). The weights and optimizer state of every seed, and the record so far."""
    step: int
    params: object
    opt_state: object
    alive: object
    dstep: object
    curves: list
    last_train: np.ndarray
    recent: np.ndarray
    last_eval: np.ndarray


def _bounds(steps: int, chunk: int, start: int, splits: Sequence[int]) -> list[tuple[int, int]]:
    """`chunk_bounds`, begun at `start` (a resumed run) and cut at each of `splits` (branch points)."""
    out = []
    for a, b in chunk_bounds(steps, chunk):
        if b <= start:
            continue
        a = max(a, start)
        for cut in sorted(x for x in set(splits) if a < x < b):
            out.append((a, cut))
            a = cut
        out.append((a, b))
    return out


def train(config: RunConfig, *, trackers: Iterable[Tracker] = (), cancel=None, chunk: int | None = None) -> RunResult:
    """Train one run. See `train_seeds`."""
    return train_seeds(config, [config.seed], trackers=trackers, cancel=cancel, chunk=chunk)[0]


def train_seeds(config: RunConfig, seeds: Sequence[int], *, trackers: Iterable[Tracker] = (),
                cancel: threading.Event | Callable[[], bool] | None = None, chunk: int | None = None,
                branch_at: Sequence[int] = (), on_branch: Callable[[Branch], None] | None = None,
                resume: Branch | None = None) -> list[RunResult]:
    """Train `config` once per seed, all seeds together through `vmap`.

    Args:
        config: the run; its `seed` is replaced by each of `seeds`.
        seeds: distinct seeds (at least one).
        trackers: receive `start`, an `Event` per seed after each chunk, and `finish`.
        cancel: a `threading.Event` or a callable; when set, the runs stop after the current
            chunk and end as `cancelled`, keeping what was trained.
        chunk: steps per compiled call (default: sized from the model's FLOPs).
        branch_at, on_branch: after each of these steps, `on_branch(Branch)` is given where
            training stands (the WSD cooldowns of `lab.cooldown` continue from there).
        resume: continue from a `Branch` (of a run whose steps up to it this config repeats
            exactly: a cooldown of it) instead of from the start; the result's curve holds the
            branch's points, its time only its own steps.

    Returns:
        One `RunResult` per seed, in the order of `seeds`. Divergence is a status, not an
        exception: a run whose loss turns non-finite or explodes ends `diverged` with its step.
        With `config.target_loss` or `config.patience` set, a seed whose scheduled evaluation
        reaches the target, or that has not improved for `patience` evaluations, stops there on its
        own (the others go on): it ends `done` with `steps` the step it stopped at and `stopped`
        saying why ("target" or "patience"; None for a run that trained all its planned steps).

    Raises:
        ConfigError: the data cannot hold one context window, the seeds are not distinct, or the
            run would not fit in the device's memory (checked before anything is allocated).
    """
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct and at least one, got {seeds}")
    configs = [config.replace(seed=s) for s in seeds]
    trackers = list(trackers)
    check_memory(config, len(seeds))
    dataset = load_dataset(config.data, config.model.vocab)
    dataset.check_fits(config.model.context)
    m = config.model
    counts = param_counts(m)
    fpt = flops_per_token(m)
    steps, per_step = config.steps, config.tokens_per_step
    chunk = chunk or auto_chunk(config)
    start = resume.step if resume is not None else 0
    bounds = _bounds(steps, chunk, start, branch_at)
    n_chunks = len(bounds)
    dtype = compute_dtype(config)
    tx = optim.make_optimizer(config.optim, m)

    t_start = time.perf_counter()
    keys = jnp.stack([jr.PRNGKey(s) for s in seeds])
    init_keys, data_keys = jax.vmap(lambda k: jr.split(k))(keys).transpose(1, 0, 2)
    params, static, opt_state = _init(m, tx, init_keys)
    opt_state = opt_state._replace(hyperparams={k: jnp.full(len(seeds), v, jnp.float32)
                                                for k, v in optim.hyperparams(config.optim).items()})
    sched = {k: jnp.asarray(v) for k, v in optim.schedule_params(config.optim, steps, config.warmup_steps).items()}
    z_loss = jnp.float32(config.optim.z_loss)
    data = jnp.asarray(dataset.train)
    windows = jnp.asarray(eval_windows(dataset.val, config.eval_tokens, m.context))
    alive = jnp.ones(len(seeds), bool)
    dstep = jnp.full(len(seeds), -1, jnp.int32)
    statics = dict(tx=tx, chunk=chunk, batch=config.batch, context=m.context, dtype=dtype,
                   explode=explode_threshold(m.vocab))

    info = {"steps": steps, "tokens": steps * per_step, "seeds": len(seeds), "chunk": chunk,
            "flops_per_token": fpt, "dataset": dataset.name, "device": device_name(), **counts.as_dict()}
    for cfg in configs:
        for t in trackers:
            t.start(cfg, info)

    stopper = _Stopper(config, len(seeds))
    curves: list[list[dict]] = [[] for _ in seeds]
    last_train = np.full(len(seeds), np.nan)
    recent = np.zeros((0, len(seeds)), np.float32)     # the last TRAIN_LOSS_STEPS steps' losses
    last_eval = np.full(len(seeds), np.nan)
    if resume is not None:
        if len(resume.curves) != len(seeds):
            raise ValueError(f"the branch holds {len(resume.curves)} seeds, not {len(seeds)}")
        params, opt_state, alive, dstep = resume.params, resume.opt_state, resume.alive, resume.dstep
        curves = [[dict(e) for e in curve] for curve in resume.curves]
        last_train, recent, last_eval = resume.last_train.copy(), resume.recent.copy(), resume.last_eval.copy()
    branch_at = set(branch_at)
    first_step_s, steady_s, steady_steps, done_steps = 0.0, 0.0, 0, start
    status_all = "done"
    for c, (step0, stop) in enumerate(bounds):
        if cancel_requested(cancel):
            status_all = "cancelled"
            break
        t0 = time.perf_counter()
        params, opt_state, alive, dstep, losses = _train_chunk(
            params, opt_state, static, data, data_keys, alive, dstep, jnp.int32(step0), jnp.int32(stop), sched,
            z_loss, **statics)
        losses = np.asarray(losses)          # waits for the chunk
        dt = time.perf_counter() - t0
        n_done = stop - step0
        done_steps = stop
        if c == 0:
            first_step_s = dt
        else:
            steady_s += dt
            steady_steps += n_done
        alive_np = np.asarray(alive)
        with np.errstate(all="ignore"):
            chunk_train = np.array([np.nanmean(col) if np.isfinite(col).any() else np.nan for col in losses[:n_done].T])
        recent = np.concatenate([recent, losses[:n_done]])[-TRAIN_LOSS_STEPS:]
        with np.errstate(all="ignore"):
            tail = np.array([np.nanmean(col) if np.isfinite(col).any() else np.nan for col in recent.T])
        last_train = np.where(np.isfinite(tail), tail, last_train)
        scheduled = _eval_after(c, n_chunks, config.evals)
        evaluated = scheduled or (~alive_np & ~stopper.stopped).any()     # after a divergence: every chunk
        if evaluated:
            last_eval = np.asarray(_evaluate(params, static, windows, dtype=dtype), dtype=np.float64)
        if scheduled and stop < steps:           # target_loss / patience: stop the seeds that met them
            stops_now = stopper.update(last_eval, alive_np, done_steps)
            if stops_now.any():
                alive_np = alive_np & ~stops_now
                alive = jnp.asarray(alive_np)
        lr = float(optim.learning_rate(done_steps - 1, sched))
        elapsed = time.perf_counter() - t_start
        for i, s in enumerate(seeds):
            if stopper.step[i] is not None and stopper.step[i] < done_steps:
                continue                         # stopped earlier: its curve ends where it stopped
            ev = Event(run_id=configs[i].run_id, seed=s, step=done_steps, steps=steps, tokens=done_steps * per_step,
                       flops=float(done_steps * per_step * fpt), train_loss=float(chunk_train[i]),
                       eval_loss=float(last_eval[i]) if evaluated else None, lr=lr,
                       tokens_per_s=n_done * per_step * len(seeds) / dt, elapsed_s=elapsed)
            curves[i].append(ev.metrics())
            for t in trackers:
                t.log(ev)
        if on_branch is not None and done_steps in branch_at:
            on_branch(Branch(step=done_steps, params=params, opt_state=opt_state, alive=alive, dstep=dstep,
                             curves=[list(cv) for cv in curves], last_train=last_train.copy(), recent=recent.copy(),
                             last_eval=last_eval.copy()))
        if not alive_np.any():
            break

    if status_all == "cancelled" and done_steps > 0 and not np.isfinite(last_eval).all():
        last_eval = np.asarray(_evaluate(params, static, windows, dtype=dtype), dtype=np.float64)
    wall = time.perf_counter() - t_start
    tokens_per_s = (steady_steps * per_step * len(seeds) / steady_s if steady_steps
                    else done_steps * per_step * len(seeds) / max(first_step_s, 1e-9))
    alive_np, dstep_np = np.asarray(alive), np.asarray(dstep)
    results = []
    for i, s in enumerate(seeds):
        stopped, steps_i = stopper.why[i], stopper.step[i] or done_steps
        status = "done" if stopped else "diverged" if not alive_np[i] else status_all
        tokens = steps_i * per_step
        eval_i = float(stopper.eval_loss[i] if stopped else last_eval[i])
        model_i = eqx.combine(jax.tree.map(lambda a: a[i], params), static)
        result = RunResult(
            run_id=configs[i].run_id, config=configs[i], status=status, train_loss=float(last_train[i]),
            eval_loss=eval_i, eval_bpb=bits_per_byte(eval_i, dataset.bytes_per_token), tokens=tokens,
            steps=steps_i, flops=float(tokens * fpt), flops_per_token=fpt, params_total=counts.total,
            params_embedding=counts.embedding, params_non_embedding=counts.non_embedding,
            epochs=epochs(tokens, dataset), wall_s=wall, first_step_s=first_step_s, tokens_per_s=tokens_per_s,
            device=device_name(), diverged_step=int(dstep_np[i]) if status == "diverged" else None,
            unigram_loss=dataset.unigram_loss, entropy_rate=dataset.entropy_rate, dataset=dataset.name,
            curve=tuple(curves[i]), model=model_i, stopped=stopped)
        results.append(result)
        for t in trackers:
            t.finish(result)
    return results

