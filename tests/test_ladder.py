"""Ladders, families and the laws fitted to them (issue 12): the engine side, without training
except where a test says so. Losses written to a store follow a known law, so each check can
fail: a wrong exponent, a pooled family or a missed warning shows."""

import json
import math

import numpy as np
import pytest

from lab import laws, plans
from lab.config import ConfigError, DataConfig, ModelConfig, OptimConfig, RunConfig
from lab.counting import flops_per_token, param_counts
from lab.family import check_one_family, differing_fields, family_key
from lab.store import RunStore
from lab.sweep import plan_summary
from lab.trackers import RunResult

E, A, ALPHA = 0.9, 60.0, 0.3


def law(N):
    return E + A * N ** -ALPHA


def result(cfg: RunConfig, loss: float, epochs: float = 0.5, status: str = "done") -> RunResult:
    counts, fpt = param_counts(cfg.model), flops_per_token(cfg.model)
    return RunResult(
        run_id=cfg.run_id, config=cfg, status=status, train_loss=loss, eval_loss=loss, eval_bpb=loss / math.log(2),
        tokens=cfg.tokens_trained, steps=cfg.steps, flops=float(fpt * cfg.tokens_trained), flops_per_token=fpt,
        params_total=counts.total, params_embedding=counts.embedding, params_non_embedding=counts.non_embedding,
        epochs=epochs, wall_s=1.0, first_step_s=0.5, tokens_per_s=1e5, device="cpu:test", diverged_step=None,
        unigram_loss=3.3, entropy_rate=None, dataset="stdlib", curve=())


def ladder_results(seeds=(0, 1, 2), noise=0.002, widths=plans.LADDER_WIDTHS, base=None):
    rng = np.random.default_rng(0)
    plan = plans.ladder(base or RunConfig(model=ModelConfig(param="mup")), widths=widths, seeds=seeds)
    return [result(c, law(param_counts(c.model).total) * (1 + noise * rng.standard_normal())) for c in plan]


# --- configs: the new settings keep old ids, tokens follow the rule ----------------------------

def test_settings_added_later_keep_every_stored_run_id():
    # literal ids of configs written before μP and tokens_per_param existed (computed by that code)
    assert RunConfig(data=DataConfig(source="builtin")).run_id == "b8de7e1a8d72bd92"
    old = RunConfig(data=DataConfig(source="builtin"), model=ModelConfig(width=128), optim=OptimConfig(lr=1e-3), seed=3)
    assert old.run_id == "e0b7e1f1d797fe32"
    assert old.replace(model__param="mup").run_id != old.run_id
    assert old.replace(tokens_per_param=20.0).run_id != old.run_id


def test_tokens_per_param_derives_tokens_from_all_parameters():
    cfg = RunConfig(tokens_per_param=20)
    n = param_counts(cfg.model).total
    assert cfg.tokens == round(20 * n)
    big = cfg.replace(model__width=128)
    assert big.tokens == round(20 * param_counts(big.model).total)
    assert big.tokens > cfg.tokens
    assert RunConfig.from_dict(json.loads(big.to_json())) == big
    with pytest.raises(ConfigError, match="tokens_per_param"):
        RunConfig(tokens_per_param=-1)


def test_mup_is_refused_where_its_rules_do_not_hold():
    with pytest.raises(ConfigError, match="Transformer only"):
        ModelConfig(arch="lstm", param="mup")
    with pytest.raises(ConfigError, match="Adam-type"):
        RunConfig(model=ModelConfig(param="mup"), optim=OptimConfig(name="sgd"))


# --- families ---------------------------------------------------------------------------------

def test_family_is_everything_but_size_tokens_and_seed():
    base = RunConfig(tokens_per_param=20)
    assert family_key(base) == family_key(base.replace(model__width=128, model__depth=4, seed=5, eval_tokens=4096))
    assert family_key(base) != family_key(base.replace(optim__lr=1e-3))
    assert family_key(base) != family_key(base.replace(model__param="mup"))
    assert family_key(base) != family_key(base.replace(tokens_per_param=0))
    assert differing_fields([base, base.replace(optim__lr=1e-3, batch=16)]) == {"batch": [32, 16],
                                                                                 "optim.lr": [0.003, 0.001]}
    with pytest.raises(ConfigError, match=r"differ in optim\.lr"):
        check_one_family([base, base.replace(optim__lr=1e-3)])


def test_ladder_plan_states_sizes_and_tokens_per_parameter():
    plan = plans.ladder(RunConfig(), tokens_per_param=20, seeds=[0, 1])
    assert len(plan) == 2 * len(plans.LADDER_WIDTHS)
    assert len({family_key(c) for c in plan}) == 1
    for c in plan:
        assert c.tokens == round(20 * param_counts(c.model).total)
    ns = [param_counts(c.model).total for c in plan]
    assert max(ns) / min(ns) >= 8
    text = plan_summary(plan)
    assert "ladder" in text
    assert "D = 20 x N" in text
    assert "N=526,048" in text
    assert len(plans.ladder(RunConfig(), widths=[32, 64], depths=[1, 2])) == 4
    with pytest.raises(ConfigError, match="tokens per parameter"):
        plans.ladder(RunConfig(), tokens_per_param=0)


# --- the family law ---------------------------------------------------------------------------

def test_family_law_recovers_the_law_and_predicts_held_out_sizes():
    res = laws.fit_family(ladder_results(), holdout=2)
    assert res.fit.alpha == pytest.approx(ALPHA, rel=0.15)
    assert len(res.fitted) == len(plans.LADDER_WIDTHS) - 2
    assert len(res.held_out) == 2
    assert "seeds' spread at 6 sizes" in res.interval_from
    assert res.trusted, res.warnings
    for p in res.held_out:   # 0.2 % noise per run: the extrapolation stays within 2 %, inside its interval
        assert p.seeds == 3
        assert abs(p.rel_error) < 0.02
        assert p.low < p.predicted < p.high
        assert p.low < p.measured < p.high
    d = res.to_dict()
    assert d["held_out"][0]["N"] == res.held_out[0].N
    assert isinstance(d["warnings"], list)


def test_family_law_refuses_to_pool_and_needs_sizes():
    mixed = ladder_results(seeds=(0,)) + [result(RunConfig(optim=OptimConfig(lr=1e-3), tokens_per_param=20), 2.0)]
    with pytest.raises(ConfigError, match="optim.lr"):
        laws.fit_family(mixed)
    with pytest.raises(ConfigError, match="at least 4 model sizes"):
        laws.fit_family(ladder_results(seeds=(0,), widths=(32, 48, 64, 80)), holdout=1)


def test_family_law_says_why_it_cannot_be_trusted():
    # a fixed-D sweep: every size saw 200k tokens, the largest under 1 token per parameter
    fixed = [result(RunConfig(model=ModelConfig(width=w)), law(param_counts(ModelConfig(width=w)).total))
             for w in (16, 24, 32, 48, 64, 128)]
    text = " ".join(laws.fit_family(fixed).warnings)
    assert "tokens per parameter" in text
    assert "ladder" in text
    # repeated data
    rep = [result(c, law(param_counts(c.model).total), epochs=6.0) for c in plans.ladder(RunConfig())]
    assert any("epochs" in w for w in laws.fit_family(rep).warnings)
    # one noisy seed per size: a wide interval is named, and its noise came from the residuals
    noisy = laws.fit_family(ladder_results(seeds=(0,), noise=0.03), holdout=2)
    assert any("interval of the prediction" in w for w in noisy.warnings)
    assert "too few seeds" in noisy.interval_from
    # one seed at each of the fewest sizes a law needs: one degree of freedom, so the interval is
    # honest and wide (Student t with 1 dof), and said to be too wide to use
    few = laws.fit_family(ladder_results(seeds=(0,), widths=(40, 48, 56, 64, 80)), holdout=1)
    assert len(few.fitted) == laws.MIN_SIZES and few.dof == 1
    p = few.held_out[0]
    assert p.low < p.predicted < p.high
    assert (p.high - p.low) / p.predicted > 0.04
    assert any("interval of the prediction" in w for w in few.warnings)
    # the smallest model far off the law
    off = ladder_results(seeds=(0, 1))
    smallest = min(plans.LADDER_WIDTHS)
    off = [r if r.config.model.width != smallest else result(r.config, r.eval_loss * 1.15) for r in off]
    assert any("smallest fitted size" in w and "sits off the law" in w
               for w in laws.fit_family(off, holdout=1).warnings)


def test_scaling_lab_fit_a_table_with_holdout_gives_what_the_store_gives(tmp_path, capsys):
    import csv

    from lab.cli import main
    runs = ladder_results(seeds=(0, 1))
    store = RunStore(tmp_path / "s")
    for r in runs:
        store.commit(r, save_weights=False)
    table = tmp_path / "ladder.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["params", "loss", "seed", "tokens", "epochs"])
        w.writerows([r.params_total, repr(r.eval_loss), r.config.seed, r.tokens, r.epochs] for r in runs)
    assert main(["fit", str(table), "--law", "kaplan-n", "--holdout", "2", "--json"]) == 0
    from_table = json.loads(capsys.readouterr().out)
    assert main(["fit", "--store", str(tmp_path / "s"), "--holdout", "2", "--json"]) == 0
    from_store = json.loads(capsys.readouterr().out)
    keys = ("N", "predicted", "low", "high", "measured", "rel_error", "seeds")
    assert len(from_table["held_out"]) == len(from_store["held_out"]) == 2
    for t, st in zip(from_table["held_out"], from_store["held_out"]):
        assert [t[k] for k in keys] == pytest.approx([st[k] for k in keys], rel=1e-9)
    assert from_table["trusted"] == from_store["trusted"]
    assert from_table["warnings"] == from_store["warnings"]
    # bad tables: clear errors, exit status 2
    bad = tmp_path / "bad.csv"
    bad.write_text("params,loss,seed\n1000,2.0,0\n1000,2.1,0\n2000,1.9,0\n4000,1.8,0\n8000,1.7,0\n")
    assert main(["fit", str(bad), "--holdout", "1"]) == 2
    assert "same seed" in capsys.readouterr().err
    assert main(["fit", str(table), "--law", "chinchilla", "--holdout", "1"]) == 2
    assert "kaplan-n" in capsys.readouterr().err
    assert main(["fit", str(table), "--holdout", "1", "--bootstrap", "100"]) == 2
    assert "leave --bootstrap out" in capsys.readouterr().err


def test_scaling_lab_fit_store_holdout_json(tmp_path, capsys):
    from lab.cli import main
    store = RunStore(tmp_path / "s")
    for r in ladder_results(seeds=(0, 1)):
        store.commit(r, save_weights=False)
    assert main(["fit", "--store", str(tmp_path / "s"), "--holdout", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["law"] == "family"
    assert len(out["held_out"]) == 2
    for p in out["held_out"]:
        assert {"predicted", "low", "high", "measured", "rel_error"} <= set(p)
        assert abs(p["rel_error"]) < 0.02
    # a second family in the store: refused, and the message names the families and the field
    other = RunConfig(model=ModelConfig(param="mup"), optim=OptimConfig(lr=1e-2), tokens_per_param=20)
    store.commit(result(other, 2.0), save_weights=False)
    assert main(["fit", "--store", str(tmp_path / "s"), "--holdout", "2"]) == 2
    err = capsys.readouterr().err
    assert "2 families" in err
    assert "optim.lr" in err
    assert "--family" in err
    assert main(["fit", "--store", str(tmp_path / "s"), "--families", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [f["runs"] for f in listed["families"]] == [2 * len(plans.LADDER_WIDTHS), 1]
    assert "optim.lr" in listed["differ_in"]
    assert main(["fit", "--store", str(tmp_path / "s"), "--families"]) == 0
    assert "2 families of finished runs" in capsys.readouterr().out
    key = family_key(plans.ladder(RunConfig(model=ModelConfig(param="mup"))).configs[0])
    assert main(["fit", "--store", str(tmp_path / "s"), "--holdout", "2", "--family", key[:6]]) == 0
    assert "held out N" in capsys.readouterr().out


# --- μP ----------------------------------------------------------------------------------------

def _logit_scale_after_steps(param: str, width: int, steps: int = 4, lr: float = 1e-2) -> float:
    """Mean |logit| on a fixed batch after a few Adam steps (μP's coordinate check)."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import jax.random as jr
    import optax

    from lab.data import load_dataset, sample_batch
    from lab.models import lr_multipliers, make_model, width_mult
    cfg = ModelConfig(width=width, depth=2, heads=4, param=param, base_width=32)
    data = jnp.asarray(load_dataset(DataConfig(source="builtin")).train)
    params, static = eqx.partition(make_model(cfg, key=jr.PRNGKey(0)), eqx.is_inexact_array)
    tx = optax.adam(lr)
    state, m = tx.init(params), width_mult(cfg)

    @jax.jit
    def step(p, s, key):
        x, y = sample_batch(data, key, 8, 32)
        g = jax.grad(lambda p: optax.softmax_cross_entropy_with_integer_labels(eqx.combine(p, static)(x), y).mean())(p)
        u, s = tx.update(g, s, p)
        u = jax.tree.map(lambda a, f: a * f, u, lr_multipliers(m, p))
        return optax.apply_updates(p, u), s

    for i in range(steps):
        params, state = step(params, state, jr.PRNGKey(i))
    x, _ = sample_batch(data, jr.PRNGKey(99), 8, 32)
    return float(jnp.abs(eqx.combine(params, static)(x)).mean())


def test_mup_coordinate_check_logits_stay_flat_across_widths():
    widths = (32, 64, 128, 256)
    mup = [_logit_scale_after_steps("mup", w) for w in widths]
    std = [_logit_scale_after_steps("standard", w) for w in widths]
    assert max(mup) / min(mup) < 1.5, mup          # μP: the same size of update at every width
    assert std[-1] / std[0] > 3, std               # standard: logits grow with width under Adam
    assert mup[0] == pytest.approx(std[0], rel=1e-5)   # at the base width they are one model


def test_mup_lr_multipliers_touch_hidden_matrices_only():
    import equinox as eqx
    import jax
    import jax.random as jr

    from lab.models import lr_multipliers, make_model
    model = make_model(ModelConfig(width=128, param="mup", base_width=32), key=jr.PRNGKey(0))
    params, _ = eqx.partition(model, eqx.is_inexact_array)
    mult = lr_multipliers(4.0, params)
    assert mult.blocks[0].w_qkv == 0.25
    assert mult.blocks[1].mlp.w_down == 0.25
    assert mult.tok_emb == 1.0
    assert mult.head == 1.0
    assert mult.blocks[0].b_qkv == 1.0
    assert mult.ln_f.scale == 1.0
    assert len(jax.tree.leaves(mult)) == len(jax.tree.leaves(params))


def test_head_size_rule_keeps_one_family_along_the_width():
    base = RunConfig(model=ModelConfig(param="mup", head_dim=16), tokens_per_param=20)
    wide = base.replace(model__width=128)
    assert base.model.heads == 4
    assert wide.model.heads == 8
    assert family_key(base) == family_key(wide)
    assert family_key(base) != family_key(base.replace(model__head_dim=8))
    with pytest.raises(ConfigError, match="multiple of the head size"):
        ModelConfig(width=40, head_dim=16)
    # μP's attention scale is 1/head size times sqrt(base head size): with a fixed head size it is
    # the standard 1/sqrt(head size) at every width
    import jax.random as jr

    from lab.models import make_model
    assert make_model(wide.model, key=jr.PRNGKey(0)).blocks[0].attn_scale == pytest.approx(16 ** -0.5)
    assert make_model(ModelConfig(width=128, param="mup"), key=jr.PRNGKey(0)).blocks[0].attn_scale == pytest.approx(
        math.sqrt(16) / 32)


def test_ladder_base_applies_the_tuned_settings_where_they_hold():
    tuned = plans.ladder_base(RunConfig())
    assert tuned.model.param == plans.LADDER_PARAM
    assert tuned.optim.lr == plans.LADDER_LR
    assert tuned.eval_tokens == plans.LADDER_EVAL_TOKENS
    lstm = plans.ladder_base(RunConfig(model=ModelConfig(arch="lstm")))
    assert lstm.model.param == "standard"            # μP is the Transformer's
    sgd = plans.ladder_base(RunConfig(optim=OptimConfig(name="sgd")))
    assert sgd.model.param == "standard"


def test_cli_ladder_uses_the_tuned_settings_unless_told_otherwise(capsys):
    from lab.cli import main
    assert main(["sweep", "--tokens-per-param", "20", "--dry-run", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [r["width"] for r in runs] == list(plans.LADDER_WIDTHS)
    assert {r["lr"] for r in runs} == {plans.LADDER_LR}
    assert main(["sweep", "--tokens-per-param", "20", "--widths", "32,64", "--lrs", "1e-3", "--dry-run", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [r["width"] for r in runs] == [32, 64]
    assert {r["lr"] for r in runs} == {1e-3}


def test_a_retrain_is_not_counted_as_another_seed():
    runs = ladder_results(seeds=(0,))
    again = [result(r.config.replace(attempt=1), r.eval_loss * 1.001) for r in runs[:2]]
    law = laws.fit_family(runs + again, holdout=2)
    assert all(len(z.losses) == 1 for z in law.fitted)
    assert law.fitted[0].losses == (again[0].eval_loss,)          # the newest attempt counts
