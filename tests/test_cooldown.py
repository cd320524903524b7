"""WSD cooldowns (lab.cooldown): a shorter run branched from a long one's stable phase is the run
that config trains alone, exactly; what cannot branch is refused; the store keeps each as a run."""

import math

import equinox as eqx
import jax
import numpy as np
import pytest

from conftest import tiny
from lab import optim
from lab.config import ConfigError
from lab.cooldown import cooldown_configs, train_cooldowns
from lab.store import RunStore
from lab.training import train, train_seeds

STEP = 8 * 32                                   # tokens a step of `tiny`
LONG = tiny(tokens=STEP * 60).replace(optim__schedule="wsd")


def leaves(model):
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(model, eqx.is_array))]


def test_a_branched_cooldown_is_the_run_its_config_trains_alone():
    got = train_cooldowns(LONG, [STEP * 30, STEP * 45], seeds=[0, 1])
    assert sorted(got) == [STEP * 30, STEP * 45, STEP * 60]
    long = got[STEP * 60]
    for short_cfg in cooldown_configs(LONG, [STEP * 30, STEP * 45]):
        branched = got[short_cfg.tokens]
        assert [r.config for r in branched] == [short_cfg.replace(seed=s) for s in (0, 1)]
        alone = train_seeds(short_cfg, [0, 1])[1]                # the same seeds together, as vmap batches them
        assert branched[1].eval_loss == alone.eval_loss and branched[1].steps == alone.steps == short_cfg.steps
        assert all(np.array_equal(a, b) for a, b in zip(leaves(branched[1].model), leaves(alone.model)))
        # up to the branch its curve is the long run's; then it decays to the final rate
        start = short_cfg.decay_start
        before = [e for e in branched[1].curve if e["step"] <= start]
        assert before and before == [e for e in long[1].curve if e["step"] <= start]
        assert branched[1].curve[-1]["lr"] == pytest.approx(LONG.optim.lr * LONG.optim.final_lr_frac)
        assert branched[1].wall_s < long[1].wall_s               # it trained its decay only
        assert branched[0].eval_loss != branched[1].eval_loss    # two seeds, two runs


def test_a_cooldown_warms_up_as_the_run_it_branches_from():
    short = cooldown_configs(LONG, [STEP * 30])[0]
    assert short.cooldown_of == LONG.tokens and short.warmup_steps == LONG.warmup_steps == 3

    def lr(cfg):
        return np.asarray(optim.learning_rate(np.arange(cfg.steps),
                                              optim.schedule_params(cfg.optim, cfg.steps, cfg.warmup_steps)))

    np.testing.assert_array_equal(lr(short)[:short.decay_start], lr(LONG)[:short.decay_start])
    assert lr(short)[short.decay_start] < LONG.optim.lr and lr(LONG)[short.decay_start] == pytest.approx(LONG.optim.lr)
    assert short.run_id != LONG.replace(tokens=STEP * 30).run_id          # not the run trained from its own start


@pytest.mark.parametrize("change, words", [
    ({"optim__schedule": "cosine"}, "use schedule=wsd"),
    ({"tokens": STEP * 61}, "at least as long"),
    ({"target_loss": 2.0}, "target_loss=0"),
    ({"tokens": STEP * 2}, "before the warmup"),
])
def test_what_cannot_branch_is_refused_before_anything_trains(change, words):
    with pytest.raises(ConfigError, match=words):
        LONG.replace(**({"tokens": STEP * 30, "cooldown_of": LONG.tokens} | change))


def test_cooldowns_of_a_run_that_is_not_wsd_or_not_longer_are_refused():
    with pytest.raises(ConfigError, match="WSD"):
        cooldown_configs(LONG.replace(optim__schedule="cosine"), [STEP * 30])
    with pytest.raises(ConfigError, match="shorter"):
        cooldown_configs(LONG, [STEP * 60])


def test_the_store_keeps_each_run_and_trains_only_what_it_lacks(tmp_path):
    store = RunStore(tmp_path / "store")
    first = train_cooldowns(LONG, [STEP * 30], store=store)
    assert {r.status for r in store.records()} == {"done"} and len(store.records()) == 2
    again = train_cooldowns(LONG, [STEP * 30, STEP * 45], store=store)      # the long run is stored: 45 alone
    assert again[STEP * 30][0].eval_loss == first[STEP * 30][0].eval_loss and len(store.records()) == 3
    alone = train(cooldown_configs(LONG, [STEP * 45])[0])
    assert math.isclose(again[STEP * 45][0].eval_loss, alone.eval_loss, rel_tol=0, abs_tol=0)


def test_a_cooldown_sweep_from_the_command_line_trains_each_long_run_once_and_resumes(tmp_path, capsys):
    """`scaling-lab sweep --schedule wsd --cooldowns 2,4`: per size one run at 4 tokens per parameter
    and one cooldown at 2, stored as runs of one family; a second call trains nothing."""
    import json

    from lab.cli import main
    args = ["sweep", "--schedule", "wsd", "--cooldowns", "2,4", "--widths", "16", "--depth", "1", "--heads", "2",
            "--context", "32", "--batch", "8", "--data", "builtin", "--evals", "2", "--eval-tokens", "1024",
            "--store", str(tmp_path / "store"), "--quiet", "--json"]
    assert main(args) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["cooldown_of"] for r in runs] == [0, runs[0]["tokens"]] and runs[1]["tokens"] * 2 == runs[0]["tokens"]
    assert {r["status"] for r in runs} == {"done"} and runs[1]["param"] == "mup"
    store = RunStore(tmp_path / "store")
    made = {r.run_id: r.created for r in store.records()}
    assert main(args) == 0                                    # resumed: both are in the store, nothing trained
    assert [r["eval_loss"] for r in json.loads(capsys.readouterr().out)] == [r["eval_loss"] for r in runs]
    assert {r.run_id: r.created for r in store.records()} == made
    more = [*args[:-1], "--seeds", "0,1"]                       # a seed added later trains beside the stored one
    assert main(more) == 0
    table = capsys.readouterr().out
    assert "cooldown_of" in table.splitlines()[0] and len(store.records()) == 4
    assert {r.run_id: r.created for r in store.records() if r.run_id in made} == made
    assert main([*args[:4], "4", *args[5:]]) == 2                        # one ratio: refused in words
    assert "at least two different ratios of tokens per parameter" in capsys.readouterr().err
