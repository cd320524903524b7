import equinox as eqx
import jax
import jax.extend
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from lab.config import ModelConfig
from lab.counting import flops_per_token, param_counts
from lab.models import make_model


def jax_leaves(model):
    return jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))


@pytest.mark.parametrize("cfg", [
    ModelConfig(width=32, depth=2, heads=4, context=16),
    ModelConfig(width=48, depth=3, heads=3, context=40, positions="rotary"),
    ModelConfig(arch="lstm", width=24, depth=2, context=16),
])
def test_counts_match_the_real_model(cfg):
    model = make_model(cfg, key=jr.PRNGKey(0))
    leaves = jax_leaves(model)
    total = sum(x.size for x in leaves)
    counts = param_counts(cfg)
    assert counts.total == total
    emb = model.tok_emb.size + model.head.size + getattr(model, "head_bias", jnp.zeros(0)).size
    if getattr(model, "pos_emb", None) is not None:
        emb += model.pos_emb.size
    assert counts.embedding == emb
    assert counts.non_embedding == total - emb


def test_kaplan_approximation():
    cfg = ModelConfig(width=512, depth=8, heads=8, context=256)
    n = param_counts(cfg).non_embedding
    assert abs(n / (12 * 8 * 512 ** 2) - 1) < 0.01          # N ~ 12 L d^2 (Kaplan et al. 2020)


def _matmul_flops(jaxpr) -> tuple[float, float]:
    """(FLOPs of products with a weight, FLOPs of the other products) of a traced program: 2 x
    output size x contracted size for every dot_general, sub-programs included. A product
    with a weight has a 2-D operand (the flattened activations times a weight matrix); the
    attention products are batched over (batch, heads)."""
    weights = other = 0.0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            (lhs_contract, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            flops = 2 * np.prod(eqn.outvars[0].aval.shape) * np.prod([lhs[d] for d in lhs_contract])
            if all(len(v.aval.shape) == 2 for v in eqn.invars):
                weights += flops
            else:
                other += flops
    for sub in jax.extend.core.subjaxprs(jaxpr):
        w, o = _matmul_flops(getattr(sub, "jaxpr", sub))
        weights, other = weights + w, other + o
    return weights, other


@pytest.mark.parametrize("cfg", [ModelConfig(width=64, depth=2, heads=4, context=64),
                                 ModelConfig(width=96, depth=3, heads=4, context=128, positions="rotary")])
def test_flops_per_token_counts_the_models_own_products(cfg):
    """Forward FLOPs read from the model's traced matrix products: the weight products are
    exactly 2·N_matmul per token, the attention products 4·L·T·d per token times the fraction
    of the causal blocks actually computed; flops_per_token is 3x the forward (backward = 2x)."""
    from lab.models import query_block
    model = make_model(cfg, key=jr.PRNGKey(0))
    batch, T = 2, cfg.context
    jaxpr = jax.make_jaxpr(model)(jnp.zeros((batch, T), jnp.int32)).jaxpr
    weights, attention = _matmul_flops(jaxpr)
    tokens = batch * T
    n_matmul = param_counts(cfg).non_embedding + cfg.width * cfg.vocab
    matmul_params = 12 * cfg.depth * cfg.width ** 2 + cfg.width * cfg.vocab     # the weights, not biases or norms
    assert weights / tokens == 2 * matmul_params
    c = query_block(T)
    computed = sum(c * min(start + c, T) for start in range(0, T, c)) / T ** 2   # blocks of queries x keys up to them
    assert attention / tokens == pytest.approx(4 * cfg.depth * T * cfg.width * computed)
    # the convention: 6 N_matmul + 12 L T d for forward and backward, i.e. 3x the full forward
    assert flops_per_token(cfg) == 3 * (2 * n_matmul + 4 * cfg.depth * T * cfg.width)
    assert abs(2 * n_matmul / (weights / tokens) - 1) < 0.02   # biases and norms: under 2 % of the products


def test_forward_shapes():
    for cfg in (ModelConfig(width=16, depth=1, heads=2, context=8), ModelConfig(arch="lstm", width=16, depth=1, context=8)):
        model = make_model(cfg, key=jr.PRNGKey(1))
        out = model(jnp.arange(8) % 256)
        assert out.shape == (8, 256) and bool(jnp.isfinite(out).all())


def test_causality():
    cfg = ModelConfig(width=16, depth=2, heads=2, context=8)
    model = make_model(cfg, key=jr.PRNGKey(2))
    a = jnp.array([1, 2, 3, 4, 5, 6, 7, 8])
    b = a.at[5].set(100)
    la, lb = model(a), model(b)
    assert np.allclose(la[:5], lb[:5], atol=1e-5) and not np.allclose(la[5:], lb[5:])


@pytest.mark.parametrize("seq", [16, 33, 62, 64, 96, 128, 256, 512])   # whole, halves, blocks
def test_blocked_causal_attention_equals_the_masked_full_product(seq):
    from lab.models import causal_attention, query_block
    q, k, v = (jax.random.normal(jax.random.PRNGKey(i), (2, seq, 4, 8)) for i in range(3))
    mask = jnp.tril(jnp.ones((seq, seq), bool))
    s = jnp.einsum("bqnh,bknh->bnqk", q, k) / jnp.sqrt(8.0)
    ref = jnp.einsum("bnqk,bknh->bqnh", jax.nn.softmax(jnp.where(mask, s, -jnp.inf), -1), v)
    assert seq % query_block(seq) == 0
    assert np.allclose(causal_attention(q, k, v), ref, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 2, 5, 16, 33])
def test_position_gradient_is_the_sum_over_the_batch(batch):
    from lab.models import add_positions, sum_leading
    x = jax.random.normal(jax.random.PRNGKey(0), (batch, 7, 3))
    pos = jax.random.normal(jax.random.PRNGKey(1), (7, 3))
    assert np.allclose(sum_leading(x), x.sum(0), atol=1e-5)
    w = jax.random.normal(jax.random.PRNGKey(2), (batch, 7, 3))
    ours = jax.grad(lambda x, p: jnp.sum(jnp.sin(add_positions(x, p)) * w), argnums=(0, 1))(x, pos)
    ref = jax.grad(lambda x, p: jnp.sum(jnp.sin(x + p) * w), argnums=(0, 1))(x, pos)
    assert all(np.allclose(a, b, atol=1e-5) for a, b in zip(ours, ref))
