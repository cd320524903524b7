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
(2·T·d each per layer forward, times 3 for forward + backward). The LSTM has no attention
term. Total training compute C = C_token · D, so C ≈ 6·N·D for large models.
"""

from dataclasses import dataclass

from lab.config import ModelConfig, RunConfig


@dataclass(frozen=True)
class ParamCounts:
    total: int
    embedding: int        # token table + position table + output head
    non_embedding: int    # Kaplan's N

    def as_dict(self) -> dict:
        return {"params/total": self.total, "params/embedding": self.embedding,
                "params/non_embedding": self.non_embedding}


def param_counts(cfg: ModelConfig) -> ParamCounts:
    d, L, V, T = cfg.width, cfg.depth, cfg.vocab, cfg.context
    if cfg.arch == "gpt":
        per_block = (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d) + 2 * (2 * d)
        non_embedding = L * per_block + 2 * d                    # blocks + final layer norm
        embedding = V * d + (T * d if cfg.positions == "learned" else 0) + d * V
    else:
        per_layer = 4 * d * d + 4 * d * d + 4 * d                # input, recurrent weights; bias
        non_embedding = L * per_layer
        embedding = V * d + d * V + V                            # token table, head weights and bias
    return ParamCounts(total=non_embedding + embedding, embedding=embedding, non_embedding=non_embedding)


def flops_per_token(cfg: ModelConfig) -> int:
    """Training FLOPs (forward + backward) per token: 6·N_matmul + 12·L·T·d (see module doc)."""
    counts = param_counts(cfg)
    head = cfg.width * cfg.vocab
    attention = 12 * cfg.depth * cfg.context * cfg.width if cfg.arch == "gpt" else 0
    return 6 * (counts.non_embedding + head) + attention


def run_flops(cfg: RunConfig) -> int:
    """Training compute of a whole run: FLOPs per token times tokens trained."""
    return flops_per_token(cfg.model) * cfg.tokens_trained


OPTIMIZER_SLOTS = {"sgd": 0, "momentum": 1, "nesterov": 1, "adam": 2, "adamw": 2, "rmsprop": 1,
                   "adagrad": 1, "lion": 1, "adafactor": 1}


def memory_bytes(cfg: RunConfig, seeds: int = 1) -> int:
    """A training run's device memory, estimated: parameters, gradients and optimizer slots in
    fp32, plus the activations kept for the backward pass (per token and layer about 34·d
    values for the Transformer, after Korthikanti et al. 2022, plus heads·T attention
    probabilities; 10·d for the LSTM) and the logits. An estimate to refuse hopeless configs
    early, not a promise."""
    m = cfg.model
    p = param_counts(m).total
    state = p * 4 * (2 + OPTIMIZER_SLOTS[cfg.optim.name])
    tokens = cfg.batch * m.context
    if m.arch == "gpt":
        per_token_layer = 34 * m.width + 5 * m.heads * m.context
    else:
        per_token_layer = 10 * m.width
    activations = tokens * (m.depth * per_token_layer + 3 * m.vocab) * 4
    return int(seeds * (state + activations))
