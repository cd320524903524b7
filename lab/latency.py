"""How long a model takes to answer, by size: the wall time per generated token on this device.

Latency is what a user of a deployed model waits for, and it is where a small model can be the
better choice: it answers sooner, on smaller hardware. `measure_latency(cfg)` builds the model a
config describes (untrained: the time of a forward pass does not depend on the values of the
weights), generates with the lab's own sampler (`lab.models.generate`, the one `scaling-lab
sample` and the app use) and times it after a first call that compiles. The sampler reads the
whole window for every token (no cache of keys and values, unlike a production server), so the
time per token is one forward pass over the context: about 2·N FLOPs per position (`flops`).
"""

import time
from dataclasses import dataclass

import numpy as np

from lab.config import ModelConfig
from lab.counting import flops_per_token, param_counts


@dataclass(frozen=True)
class Latency:
    width: int
    depth: int
    params: int                # N, all parameters
    flops: int                 # FLOPs per generated token: one forward pass over the context (1/3 of training's)
    ms_per_token: float        # median over the repeats, after compiling
    spread_ms: float           # the repeats' range (max - min), a measure of the machine's noise
    compile_s: float           # the first call: compiling the sampler's step for this shape
    device: str


def measure_latency(cfg: ModelConfig, *, tokens: int = 32, repeats: int = 5, seed: int = 0) -> Latency:
    """Milliseconds per generated token of the model `cfg` describes (the median of `repeats`
    generations of `tokens` tokens each, after one call that compiles)."""
    if tokens < 1 or repeats < 1:
        raise ValueError(f"tokens and repeats must be at least 1, got tokens={tokens}, repeats={repeats}")
    import jax.numpy as jnp
    import jax.random as jr

    from lab.device import device_name
    from lab.models import generate, make_model
    model = make_model(cfg, key=jr.PRNGKey(seed))
    prompt = jnp.full(min(8, cfg.context), 10, jnp.int32)

    def once(n, k):
        t = time.perf_counter()
        generate(model, prompt, n, cfg.context, temperature=1.0, key=jr.PRNGKey(k)).block_until_ready()
        return time.perf_counter() - t

    compile_s = once(1, seed)
    once(tokens, seed)                  # the loop's own first-time work (splitting keys, stacking)
    per = np.array([once(tokens, seed + 1 + r) / tokens for r in range(repeats)]) * 1e3
    return Latency(width=cfg.width, depth=cfg.depth, params=param_counts(cfg).total,
                   flops=cfg.context * flops_per_token(cfg) // 3,
                   ms_per_token=float(np.median(per)), spread_ms=float(per.max() - per.min()),
                   compile_s=compile_s, device=device_name())
