"""Parameter counts, FLOPs per token and memory, from a config by arithmetic.

Conventions (both recorded with every run):
- Kaplan et al. (2020) use N = non-embedding parameters: everything but the token table,
  the position table and the output head (the unembedding). For the GPT here this is
  12·L·d² + 13·L·d (weights, biases and layer norms) + 2d (final layer norm).
- Hoffmann et al. (2022, Chinchilla) use N = all parameters.

Training FLOPs per token (Hoffmann et al. 2022, appendix F; Kaplan et al. 2020, table 1):
  C_token = 6·N_matmul + 12·L·T·d
with N_matmul the parameters that take part in a matrix multiply (non-embedding plus the
head: lookups cost nothing) and 12·L·T·d the attention scores and the weighted sum
(2·T·d each per layer forward, times 3 for forward + backward). The LSTM and the causal CNN
have no attention term: the CNN's convolution taps are parameters that each multiply one value
per token (2 FLOPs forward, like a matrix weight), so they are counted in N_matmul. Total
training compute C = C_token · D, so C ≈ 6·N·D for large models.

The causal CNN (`lab.models.CNN`): block i convolves with dilation 2^i, so its receptive field
is 1 + (k−1)·Σ dilations (van den Oord et al. 2016, WaveNet; Kalchbrenner et al. 2016,
ByteNet). Once the receptive field covers the context the dilations start again from 1
(WaveNet's cycles), and a kernel of 0 in the config means the smallest k that covers it.
"""

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

# The configs name the annotations only: counting reads a config's numbers, and `lab.config`
# imports this module (a ladder's tokens follow its size: tokens_per_param).
if TYPE_CHECKING:
    from lab.config import ModelConfig, RunConfig


@dataclass(frozen=True)
class ParamCounts:
    total: int
    embedding: int        # token table + position table + output head
    non_embedding: int    # Kaplan's N

    def as_dict(self) -> dict:
        return {"params/total": self.total, "params/embedding": self.embedding,
                "params/non_embedding": self.non_embedding}


def param_counts(cfg: "ModelConfig") -> ParamCounts:
    d, L, V, T = cfg.width, cfg.depth, cfg.vocab, cfg.context
    if cfg.arch == "gpt":
        per_block = (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d) + 2 * (2 * d)
        non_embedding = L * per_block + 2 * d                    # blocks + final layer norm
        embedding = V * d + (T * d if cfg.positions == "learned" else 0) + d * V
    elif cfg.arch == "lstm":
        per_layer = 4 * d * d + 4 * d * d + 4 * d                # input, recurrent weights; bias
        non_embedding = L * per_layer
        embedding = V * d + d * V + V                            # token table, head weights and bias
    else:                                                        # cnn: conv taps and bias, MLP, two layer norms
        per_block = (conv_kernel(cfg) * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d) + 2 * (2 * d)
        non_embedding = L * per_block + 2 * d                    # blocks + final layer norm
        embedding = V * d + d * V                                # token table and head (no position table)
    return ParamCounts(total=non_embedding + embedding, embedding=embedding, non_embedding=non_embedding)


def flops_per_token(cfg: "ModelConfig") -> int:
    """Training FLOPs (forward + backward) per token: 6·N_matmul + 12·L·T·d (see module doc)."""
    counts = param_counts(cfg)
    head = cfg.width * cfg.vocab
    attention = 12 * cfg.depth * cfg.context * cfg.width if cfg.arch == "gpt" else 0
    return 6 * (counts.non_embedding + head) + attention


def run_flops(cfg: "RunConfig") -> int:
    """Training compute of a whole run: FLOPs per token times tokens trained."""
    return flops_per_token(cfg.model) * cfg.tokens_trained


def matched_width(cfg: "ModelConfig", params: int, *, counted: str = "non_embedding", max_width: int = 16384) -> int:
    """The width at which `cfg`'s model has the parameter count nearest `params` (`counted`:
    "non_embedding", Kaplan's N, or "total"), everything else as in `cfg`: to compare
    architectures at equal N rather than equal width. The Transformer's width stays a multiple of
    its heads (times 2 for rotary positions); a tie goes to the smaller width."""
    if cfg.arch != "gpt":
        step = 1
    else:
        step = cfg.head_dim or cfg.heads * (2 if cfg.positions == "rotary" else 1)

    def count(width: int) -> int:
        return getattr(param_counts(dataclasses.replace(cfg, width=width * step)), counted)

    lo, hi = 1, max(1, max_width // step)
    while lo < hi:                      # counts grow with width: the first multiple at or above the target
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if count(mid) < params else (lo, mid)
    best = min((m for m in (lo - 1, lo) if m >= 1), key=lambda m: (abs(count(m) - params), m))
    return best * step


def conv_kernel(cfg: "ModelConfig") -> int:
    """The CNN's taps per convolution: `cfg.kernel`, or for 0 the smallest k >= 2 whose receptive
    field with dilations 1, 2, ..., 2^(L-1) covers the context: 1 + (k-1)(2^L - 1) >= T."""
    if cfg.kernel:
        return cfg.kernel
    span = 2 ** min(cfg.depth, max(1, (cfg.context - 1).bit_length())) - 1   # Σ dilations (capped: no overflow)
    return max(2, 1 + math.ceil((cfg.context - 1) / span))


def conv_dilations(cfg: "ModelConfig") -> tuple[int, ...]:
    """The CNN's dilation per block: 1, 2, 4, ... doubling until the receptive field covers the
    context, then again from 1 (WaveNet's cycles; no block's taps reach far past the context)."""
    k, T = conv_kernel(cfg), cfg.context
    cycle = 1
    while cycle < cfg.depth and 1 + (k - 1) * (2 ** cycle - 1) < T:
        cycle += 1
    return tuple(2 ** (i % cycle) for i in range(cfg.depth))


def receptive_field(cfg: "ModelConfig") -> int:
    """Tokens a CNN's prediction at position t sees, t itself included: 1 + (k-1)·Σ dilations (may
    exceed the context, which then limits it). For the Transformer and the LSTM: the context."""
    if cfg.arch != "cnn":
        return cfg.context
    return 1 + (conv_kernel(cfg) - 1) * sum(conv_dilations(cfg))


OPTIMIZER_SLOTS = {"sgd": 0, "momentum": 1, "nesterov": 1, "adam": 2, "adamw": 2, "rmsprop": 1,
                   "adagrad": 1, "lion": 1, "adafactor": 1}


def memory_bytes(cfg: "RunConfig", seeds: int = 1) -> int:
    """A training run's device memory, estimated: parameters, gradients and optimizer slots in
    fp32, plus the activations kept for the backward pass (per token and layer about 34·d
    values for the Transformer, after Korthikanti et al. 2022, plus heads·T attention
    probabilities; 10·d for the LSTM; 14·d for the CNN, plus a T x T x d convolution matrix and
    its gradient per block, an upper bound: `lab.models.conv_as_matrix` builds one only for wide
    kernels) and the logits. An estimate to refuse hopeless configs early, not a promise."""
    m = cfg.model
    p = param_counts(m).total
    state = p * 4 * (2 + OPTIMIZER_SLOTS[cfg.optim.name])
    tokens = cfg.batch * m.context
    conv_matrix = 0
    if m.arch == "gpt":
        per_token_layer = 34 * m.width + 5 * m.heads * m.context
    elif m.arch == "lstm":
        per_token_layer = 10 * m.width
    else:
        per_token_layer = 14 * m.width
        conv_matrix = 2 * m.depth * m.context * m.context * m.width   # the matrix and its gradient, per block
    activations = (tokens * (m.depth * per_token_layer + 3 * m.vocab) + conv_matrix) * 4
    return int(seeds * (state + activations))
