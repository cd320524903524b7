import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import pytest

from lab import optim
from lab.config import OPTIMIZERS, SCHEDULES, OptimConfig

# Learning rates that suit each optimizer on the toy problem (Adagrad and SGD want larger steps).
LR = {"sgd": 0.5, "momentum": 0.2, "nesterov": 0.2, "adam": 0.05, "adamw": 0.05, "rmsprop": 0.01, "adagrad": 0.5,
      "lion": 0.01, "adafactor": 0.05}


def _problem():
    """Softmax regression on fixed random data: 64 examples, 8 features, 4 classes."""
    kx, kw = jr.split(jr.PRNGKey(0))
    x = jr.normal(kx, (64, 8))
    y = jnp.argmax(x @ jr.normal(kw, (8, 4)), axis=1)
    params = {"w": jnp.zeros((8, 4)), "b": jnp.zeros(4)}

    def loss(p):
        return optax.softmax_cross_entropy_with_integer_labels(x @ p["w"] + p["b"], y).mean()

    return params, loss


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_lowers_the_loss(name):
    params, loss = _problem()
    cfg = OptimConfig(name=name, lr=LR[name], schedule="constant", warmup=0.0, weight_decay=1e-4)
    tx = optim.make_optimizer(cfg)
    state = optim.init_state(cfg, params)
    sched = optim.schedule_params(cfg, 50)

    @jax.jit
    def step(p, s, i):
        s = optim.with_learning_rate(s, optim.learning_rate(i, sched))
        g = jax.grad(loss)(p)
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s

    start = float(loss(params))
    for i in range(50):
        params, state = step(params, state, i)
    assert float(loss(params)) < 0.7 * start, name


def test_hyperparameters_are_data():
    # one transformation object per (name, clip on/off): configs differing in numbers share it
    a = optim.make_optimizer(OptimConfig(name="adamw", lr=1e-3, weight_decay=0.0))
    b = optim.make_optimizer(OptimConfig(name="adamw", lr=3e-2, weight_decay=0.3, b2=0.99))
    assert a is b
    s = optim.init_state(OptimConfig(weight_decay=0.3, b2=0.99), {"w": jnp.ones((2, 2))})
    assert float(s.hyperparams["weight_decay"]) == pytest.approx(0.3)
    assert float(s.hyperparams["b2"]) == pytest.approx(0.99)


@pytest.mark.parametrize("kind", SCHEDULES)
def test_schedules_warm_up_then_follow_their_shape(kind):
    cfg = OptimConfig(lr=1.0, schedule=kind, warmup=0.1, decay=0.2, final_lr_frac=0.1)
    lr = optim.schedule_curve(cfg, 100)
    assert lr[0] == pytest.approx(0.1)
    assert lr[9] == pytest.approx(1.0)   # linear warmup over 10 steps
    assert np.all(np.diff(lr[:10]) > 0)
    if kind == "constant":
        assert np.allclose(lr[10:], 1.0)
    else:
        assert lr[-1] == pytest.approx(0.1, abs=1e-6)
        assert np.all(np.diff(lr[10:]) <= 1e-7)
    if kind == "wsd":
        assert np.allclose(lr[10:80], 1.0)
        assert lr[90] < 1.0
    if kind == "cosine":
        assert lr[55] == pytest.approx(0.55, abs=0.02)                       # halfway: the mean of peak and end


@pytest.mark.parametrize("name", ["adamw", "lion", "adam"])
def test_mup_is_a_transform_in_the_chain_that_scales_each_layer(name):
    """μP's chain gives the plain chain's updates times `lab.models.lr_multipliers`: 1/m for the
    blocks' hidden matrices, the others untouched (the training loop applies it as it is)."""
    import equinox as eqx

    from lab.config import ModelConfig
    from lab.models import lr_multipliers, make_model, width_mult
    model = ModelConfig(width=64, depth=1, heads=2, context=8, param="mup", base_width=16)
    params = eqx.filter(make_model(model, key=jr.PRNGKey(0)), eqx.is_inexact_array)
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.01), params)
    cfg = OptimConfig(name=name, weight_decay=0.1)
    plain, mup = optim.make_optimizer(cfg), optim.make_optimizer(cfg, model)
    assert optim.make_optimizer(cfg, ModelConfig(width=64, depth=1, heads=2, context=8)) is plain   # standard
    set_lr = lambda s: optim.with_learning_rate(s, 1e-2)
    u_plain, _ = plain.update(grads, set_lr(optim.init_state(cfg, params)), params)
    u_mup, _ = mup.update(grads, set_lr(optim.init_state(cfg, params, model)), params)
    factors = lr_multipliers(width_mult(model), params)
    expected = jax.tree.map(lambda u, f: u * f, u_plain, factors)
    for got, want in zip(jax.tree.leaves(u_mup), jax.tree.leaves(expected), strict=True):
        np.testing.assert_array_equal(got, want)
    assert sorted(set(jax.tree.leaves(factors))) == [0.25, 1.0]      # m = 64 / 16: some layers scaled, some not
