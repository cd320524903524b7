"""The causal convolutional model (`ModelConfig.arch="cnn"`): counts, causality, receptive field,
settings and a short training run."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from conftest import tiny
from lab import train
from lab.config import ConfigError, ModelConfig, RunConfig
from lab.counting import conv_dilations, conv_kernel, flops_per_token, param_counts, receptive_field
from lab.models import CNN, causal_conv, conv_as_matrix, make_model
from test_counting import _matmul_flops

CONFIGS = [ModelConfig(arch="cnn", width=24, depth=3, context=16),                 # kernel 4, dilations 1, 2, 4
           ModelConfig(arch="cnn", width=16, depth=1, context=32),                 # kernel 32: one wide filter
           ModelConfig(arch="cnn", width=16, depth=2, context=16, kernel=3)]       # receptive field 7 < context


@pytest.fixture(params=["sum", "matrix"])
def conv_form(request, monkeypatch):
    """Run a test with each form of the convolution (`lab.models.conv_as_matrix`)."""
    monkeypatch.setattr("lab.models.CONV_MATRIX_TAPS", 10 ** 9 if request.param == "sum" else 0)
    return request.param


@pytest.mark.parametrize("cfg", CONFIGS)
def test_counts_match_the_real_model(cfg):
    model = make_model(cfg, key=jr.PRNGKey(0))
    assert isinstance(model, CNN)
    total = sum(x.size for x in jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array)))
    counts = param_counts(cfg)
    assert counts.total == total
    assert counts.embedding == model.tok_emb.size + model.head.size          # no position table
    assert all(b.w_conv.shape == (conv_kernel(cfg), cfg.width) for b in model.blocks)
    assert tuple(b.dilation for b in model.blocks) == conv_dilations(cfg)


def test_kernel_dilations_and_receptive_field():
    def layout(**kw):
        cfg = ModelConfig(arch="cnn", width=8, **kw)
        return conv_kernel(cfg), conv_dilations(cfg), receptive_field(cfg)
    assert layout(depth=1, context=64) == (64, (1,), 64)
    assert layout(depth=2, context=64) == (22, (1, 2), 64)                  # 1 + 21·3 covers 64
    assert layout(depth=6, context=64) == (2, (1, 2, 4, 8, 16, 32), 64)    # WaveNet's kernel 2
    assert layout(depth=8, context=64)[1] == (1, 2, 4, 8, 16, 32, 1, 2)     # cycles once the context is covered
    assert layout(depth=2, context=64, kernel=3) == (3, (1, 2), 7)          # a stated kernel: it may not cover
    assert layout(depth=200, context=4096)[0] == 2                          # no overflow for deep stacks
    for depth in range(1, 9):
        for context in (2, 16, 33, 64, 256):
            assert receptive_field(ModelConfig(arch="cnn", depth=depth, context=context)) >= context
    assert receptive_field(ModelConfig(context=64)) == 64                   # the Transformer sees its context


@pytest.mark.parametrize("dilation, kernel, seq", [(4, 3, 16), (2, 20, 33)])
def test_both_forms_of_the_convolution_equal_the_definition(dilation, kernel, seq, conv_form):
    x = np.asarray(jr.normal(jr.PRNGKey(0), (2, seq, 5)))
    w = np.asarray(jr.normal(jr.PRNGKey(1), (kernel, 5)))
    ref = np.zeros_like(x)
    for t in range(seq):
        for j in range(kernel):
            if t - j * dilation >= 0:
                ref[:, t] += w[j] * x[:, t - j * dilation]
    assert conv_as_matrix(kernel, dilation, seq, 5) == (conv_form == "matrix")
    conv = jax.jit(lambda x, w: causal_conv(x, w, dilation))    # a new function: traced with this form
    assert np.allclose(conv(jnp.asarray(x), jnp.asarray(w)), ref, atol=1e-4)


@pytest.mark.parametrize("cfg", [CONFIGS[0], CONFIGS[2]])
def test_strictly_causal_and_sees_exactly_its_receptive_field(cfg, conv_form):
    """Changing tokens t+1.. never changes the logits at <= t; changing token s changes exactly the
    logits at s .. s + receptive_field - 1."""
    model = make_model(cfg, key=jr.PRNGKey(2))
    T, rf = cfg.context, receptive_field(cfg)
    a = jr.randint(jr.PRNGKey(3), (T,), 0, 256)
    pos = jnp.arange(T)
    later = [jnp.where(pos > t, (a + 1 + pos) % 256, a) for t in range(T)]       # tokens after t changed
    one = [a.at[s].set((a[s] + 7) % 256) for s in range(T)]                       # token s changed
    logits = np.asarray(jax.jit(lambda x: model(x))(jnp.stack([a, *later, *one])))
    la, later, one = logits[0], logits[1:T + 1], logits[T + 1:]
    for t in range(T):
        assert np.array_equal(later[t][:t + 1], la[:t + 1]), t
        changed = np.abs(one[t] - la).max(-1) > 1e-6
        assert list(np.flatnonzero(changed)) == list(range(t, min(T, t + rf))), (t, rf)


def test_flops_per_token_counts_the_models_own_products():
    """The MLP and head products read from the traced model are 2·(8·L·d² + d·V) per token; the
    taps add 2·k·d per block (no attention term): flops_per_token = 6 N_matmul."""
    cfg = ModelConfig(arch="cnn", width=32, depth=2, context=32)
    model = make_model(cfg, key=jr.PRNGKey(0))
    weights, _ = _matmul_flops(jax.make_jaxpr(model)(jnp.zeros((2, cfg.context), jnp.int32)).jaxpr)
    d, V = cfg.width, cfg.vocab
    assert weights / (2 * cfg.context) == 2 * (8 * cfg.depth * d * d + d * V)
    assert flops_per_token(cfg) == 6 * (param_counts(cfg).non_embedding + d * V)


def test_settings_cli_and_form():
    from lab.cli import build_parser
    from lab.cli.options import run_config
    from widgets.fields import BY_NAME
    cfg = run_config(build_parser().parse_args(["train", "--arch", "cnn", "--kernel", "5", "--context", "32"]))
    assert cfg.model.arch == "cnn"
    assert cfg.model.kernel == 5
    assert "cnn" in BY_NAME["arch"].choices
    with pytest.raises(ConfigError, match="Transformer only"):
        ModelConfig(arch="cnn", param="mup")
    with pytest.raises(ConfigError, match="sees no earlier token"):
        ModelConfig(arch="cnn", kernel=1)
    with pytest.raises(ConfigError, match="at most the context.*kernel=16"):
        ModelConfig(arch="cnn", kernel=17, context=16)
    # a later field: at its default it is left out of the canonical JSON, so stored run ids stay
    assert "kernel" not in RunConfig().to_json()
    assert RunConfig().run_id == "0db51d46f8654d93"
    cnn = RunConfig(model=ModelConfig(arch="cnn", kernel=5))
    assert json.loads(cnn.to_json())["model"]["kernel"] == 5
    assert RunConfig.from_dict(json.loads(cnn.to_json())) == cnn


def test_cnn_trains_and_its_loss_falls():
    r = train(tiny(model__arch="cnn", tokens=8 * 32 * 48))
    losses = [e["train/loss"] for e in r.curve]
    assert r.status == "done"
    assert r.params_total == param_counts(r.config.model).total
    assert np.mean(losses[-4:]) < losses[0] - 1.5
    assert r.eval_loss < r.unigram_loss


def test_matched_width_compares_architectures_at_equal_n():
    from lab.counting import matched_width
    gpt = ModelConfig(width=32, depth=1, heads=2, context=32)
    n = param_counts(gpt).non_embedding
    assert matched_width(gpt, n) == 32
    for arch in ("lstm", "cnn"):
        cfg = ModelConfig(arch=arch, width=8, depth=1, context=32)
        w = matched_width(cfg, n)
        near = [abs(param_counts(ModelConfig(arch=arch, width=x, depth=1, context=32)).non_embedding - n)
                for x in (w - 1, w, w + 1)]
        assert near[1] == min(near), (arch, w, near)
        assert near[1] < 0.05 * n, (arch, w, near)
    assert matched_width(ModelConfig(width=64, heads=4, positions="rotary"), 10 ** 6) % 8 == 0
    assert matched_width(ModelConfig(width=64, head_dim=16), 10 ** 6) % 16 == 0
