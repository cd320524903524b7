"""Optimizers as optax chains, and the learning-rate schedules (the only place they live).

Every numeric hyperparameter is data, not code: optimizers are built once per (name, clip on
or off) through `optax.inject_hyperparams`, and a run's values (learning rate, betas, weight
decay, clip) are written into the optimizer state. So a second run with another learning
rate, schedule length or weight decay reuses the compiled training step.

Weight decay touches matrices only (biases, layer norms' scales stay undecayed). It is
decoupled (Loshchilov & Hutter 2019) for AdamW, Lion and Adafactor, and an L2 term added to
the gradient for the others.

μP (Yang et al. 2022) is one more transform at the end of a run's chain, `scale_by_width`:
each layer's update times its learning-rate factor (nanodo's `_scale_by_dict`), so the
training loop applies whatever its optimizer returns and knows nothing of parameterisations.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lab.config import SCHEDULES, ModelConfig, OptimConfig
from lab.models import lr_multipliers, width_mult


def _decay_mask(params):
    return jax.tree.map(lambda p: p.ndim >= 2, params)


def scale_by_width(mult: float) -> optax.GradientTransformation:
    """μP's per-layer learning rates at width multiplier `mult` (`lab.models.width_mult`): every
    update leaf times its factor from `lab.models.lr_multipliers` (1/mult for the blocks' hidden
    matrices, 1 elsewhere). Last in the chain, after the learning rate and decoupled weight decay
    were applied, so it is the same as giving each layer its own learning rate."""

    def init(params):
        return optax.EmptyState()

    def update(updates, state, params=None):
        return jax.tree.map(lambda u, f: u * f, updates, lr_multipliers(mult, updates)), state

    return optax.GradientTransformation(init, update)


def _factory(name: str, clip_on: bool, mult: float):
    """The optax chain for `name`, as a function of its numeric hyperparameters."""

    def make(learning_rate, weight_decay, clip, b1, b2, eps):
        l2 = optax.add_decayed_weights(weight_decay, mask=_decay_mask)
        if name == "sgd":
            core = optax.chain(l2, optax.sgd(learning_rate))
        elif name in ("momentum", "nesterov"):
            core = optax.chain(l2, optax.sgd(learning_rate, momentum=b1, nesterov=name == "nesterov"))
        elif name == "adam":
            core = optax.chain(l2, optax.adam(learning_rate, b1=b1, b2=b2, eps=eps))
        elif name == "adamw":
            core = optax.adamw(learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay, mask=_decay_mask)
        elif name == "rmsprop":
            core = optax.chain(l2, optax.rmsprop(learning_rate, decay=b2, eps=eps))
        elif name == "adagrad":
            core = optax.chain(l2, optax.adagrad(learning_rate, eps=eps))
        elif name == "lion":
            core = optax.lion(learning_rate, b1=b1, b2=b2, weight_decay=weight_decay, mask=_decay_mask)
        elif name == "adafactor":
            # Absolute step sizes (no parameter-scale factor), so lr means what it means for Adam.
            core = optax.adafactor(learning_rate, multiply_by_parameter_scale=False, weight_decay_rate=weight_decay,
                                   weight_decay_mask=_decay_mask)
        else:  # OptimConfig validates names; this guards direct callers
            raise ValueError(f"unknown optimizer {name!r}")
        chain = optax.chain(optax.clip_by_global_norm(clip), core) if clip_on else core
        return optax.chain(chain, scale_by_width(mult)) if mult != 1.0 else chain

    return make


@functools.cache
def optimizer(name: str, clip_on: bool, mult: float = 1.0) -> optax.GradientTransformation:
    """One transformation object per (name, clip on/off, μP width multiplier), so that jit caches
    stay warm."""
    placeholders = hyperparams(OptimConfig())   # any values: each run writes its own (`init_state`)
    return optax.inject_hyperparams(_factory(name, clip_on, mult), hyperparam_dtype=jnp.float32)(**placeholders)


def make_optimizer(cfg: OptimConfig, model: ModelConfig | None = None) -> optax.GradientTransformation:
    """The optimizer of a run: `cfg`'s chain, with μP's per-layer rates when `model` is μP."""
    return optimizer(cfg.name, cfg.clip > 0, width_mult(model) if model is not None else 1.0)


def hyperparams(cfg: OptimConfig) -> dict[str, float]:
    """The config's numbers as the optimizer state holds them (learning rate set per step)."""
    return {"learning_rate": 0.0, "weight_decay": cfg.weight_decay, "clip": cfg.clip or 1.0, "b1": cfg.b1,
            "b2": cfg.b2, "eps": cfg.eps}


def init_state(cfg: OptimConfig, params, model: ModelConfig | None = None):
    """Optimizer state for `params` carrying this config's hyperparameters as arrays."""
    state = make_optimizer(cfg, model).init(params)
    values = {k: jnp.asarray(v, jnp.float32) for k, v in hyperparams(cfg).items()}
    return state._replace(hyperparams=values)


def with_learning_rate(state, lr):
    """The optimizer state with its learning rate set (inside the compiled step)."""
    return state._replace(hyperparams={**state.hyperparams, "learning_rate": lr})


# --- schedules ---------------------------------------------------------------------------------

def schedule_params(cfg: OptimConfig, steps: int, warmup_steps: int | None = None) -> dict[str, np.ndarray]:
    """The schedule of a run of `steps` steps as float32 data, its kind included (an index into
    SCHEDULES), so that changing the schedule does not recompile the training step. The warmup
    lasts `cfg.warmup` of the steps, or `warmup_steps` (a WSD cooldown's: the longer run's)."""
    warmup = round(cfg.warmup * steps) if warmup_steps is None else warmup_steps
    values = {"kind": SCHEDULES.index(cfg.schedule), "peak": cfg.lr, "warmup": warmup, "total": steps,
              "decay": cfg.decay_steps(steps), "final": cfg.final_lr_frac * cfg.lr}
    return {k: np.float32(v) for k, v in values.items()}


def learning_rate(step, p: dict):
    """Learning rate at `step` (0-based) for the schedule `p` (from `schedule_params`), as jnp.

    Every schedule warms up linearly from 0 to `peak` over `warmup` steps, then:
    constant stays at `peak`; cosine follows a half cosine down to `final` at the last step;
    linear falls straight to `final`; wsd (warmup-stable-decay, Hu et al. 2024) holds `peak`
    and falls linearly to `final` over the last `decay` steps.
    """
    step = jnp.asarray(step, jnp.float32)
    peak, warmup, total, final = p["peak"], p["warmup"], p["total"], p["final"]
    warm = peak * (step + 1) / jnp.maximum(warmup, 1)
    frac = jnp.clip((step - warmup) / jnp.maximum(total - 1 - warmup, 1), 0.0, 1.0)
    shapes = {
        "constant": peak,
        "cosine": final + (peak - final) * 0.5 * (1 + jnp.cos(jnp.pi * frac)),
        "linear": peak + (final - peak) * frac,
        "wsd": peak + (final - peak) * jnp.clip((step - (total - p["decay"]) + 1) / p["decay"], 0.0, 1.0),
    }
    after = jnp.select([p["kind"] == SCHEDULES.index(k) for k in shapes], list(shapes.values()), peak)
    return jnp.where(step < warmup, warm, after)


def schedule_curve(cfg: OptimConfig, steps: int) -> np.ndarray:
    """The whole schedule as numbers, for plots and lessons."""
    return np.asarray(learning_rate(np.arange(steps), schedule_params(cfg, steps)))
