import json

import pytest

from lab.config import (
    ConfigError,
    DataConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    default,
)


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
    with pytest.raises(ConfigError, match=r"smaller than one batch.*use tokens=2048 or more"):
        RunConfig(tokens=10)
    with pytest.raises(ConfigError, match="needs a text file path"):
        DataConfig(source="file")


def test_json_round_trip_and_stable_run_id():
    cfg = RunConfig(model=ModelConfig(width=128, depth=3, positions="rotary"), optim=OptimConfig(name="lion", lr=1e-4),
                    tokens=300_000, seed=7)
    again = RunConfig.from_dict(json.loads(cfg.to_json()))
    assert again == cfg
    assert again.run_id == cfg.run_id
    assert cfg.replace(seed=8).run_id != cfg.run_id
    assert cfg.replace(optim__lr=3e-4).shape_id == cfg.shape_id       # lr is data, not shape
    assert cfg.replace(model__width=64).shape_id != cfg.shape_id
    # known values guard against accidental changes of the canonical form (stored runs keep their ids)
    assert RunConfig().run_id == "0db51d46f8654d93"
    assert cfg.run_id == "e2a1aa6b49f48f71"
    assert RunConfig(model=ModelConfig(param="mup", base_width=32), tokens_per_param=20.0).run_id == "6809a1b048809d68"


def test_from_dict_refuses_typos():
    with pytest.raises(ConfigError, match="unknown model config key"):
        RunConfig.from_dict({"model": {"widht": 3}})
    with pytest.raises(ConfigError, match="unknown run config key 'token'"):
        RunConfig.from_dict({"token": 3})


def test_steps_and_tokens_round_up_to_whole_batches():
    cfg = RunConfig(tokens=5000, batch=4, model=ModelConfig(context=64))
    assert cfg.tokens_per_step == 256
    assert cfg.steps == 20
    assert cfg.tokens_trained == 5120


def test_every_field_is_in_the_schema_once_with_its_dataclass_default():
    import dataclasses

    from lab import schema
    leaves = {f"{part}.{f.name}" for part, cls in (("model", ModelConfig), ("optim", OptimConfig), ("data", DataConfig))
              for f in dataclasses.fields(cls)}
    leaves |= {f.name for f in dataclasses.fields(RunConfig) if f.name not in ("model", "optim", "data")}
    in_schema = [s.path for s in schema.SETTINGS if s.config]
    assert sorted(in_schema) == sorted(leaves)
    assert len(set(s.key for s in schema.SETTINGS)) == len(schema.SETTINGS)
    assert default("model.width") == 64
    assert default("optim.lr") == 3e-3
    for s in schema.SETTINGS:
        assert s.label, s.path
        assert s.help, s.path
        assert s.kind in ("int", "float", "choice", "text"), s.path
        if s.kind == "choice":
            assert default(s.path) in s.choices, s.path
        elif s.kind in ("int", "float"):
            low, high = s.range
            assert s.low <= low, s.path
            assert s.high is None or high <= s.high, s.path   # the slider stays valid
            assert low <= default(s.path), s.path
            assert high is None or default(s.path) <= high, s.path
    quick = {s.path: s.quick for s in schema.SETTINGS if s.quick is not None}   # quick mode's defaults are valid
    assert RunConfig.from_settings(quick).model.width == quick["model.width"]


@pytest.mark.parametrize("path, bad", [("model.width", 0), ("model.depth", 300), ("optim.warmup", 0.95),
                                       ("batch", 0), ("data.markov_order", 9)])
def test_bounds_come_from_the_schema(path, bad):
    from lab import schema
    s = schema.BY_PATH[path]
    with pytest.raises(ConfigError, match=f"{s.words} must be") as e:
        RunConfig.from_settings({path: bad})
    assert str(s.high) in str(e.value) or str(s.low) in str(e.value)
    RunConfig.from_settings({path: default(path)})                               # the default is valid


def test_errors_name_the_setting_and_each_front_end_spells_the_fix():
    from lab.schema import app_fix, app_name, cli_fix
    with pytest.raises(ConfigError) as e:
        ModelConfig(width=0)
    assert str(e.value) == "width must be between 1 and 16384, got 0; try width=64"        # neutral: no flags
    assert e.value.spelled(fix=cli_fix) == "width must be between 1 and 16384, got 0; try --width 64"
    assert e.value.spelled(app_name, app_fix) == "Width must be between 1 and 16384, got 0; try Width = 64"
    with pytest.raises(ConfigError) as e:
        RunConfig(tokens=10)
    assert "--" not in str(e.value)
    assert "use --tokens 2048 or more" in e.value.spelled(fix=cli_fix)
    with pytest.raises(ConfigError) as e:
        ModelConfig(width=0)
    assert e.value.spelled(fix=lambda p, v: cli_fix(p, v, sweep=True)).endswith("; try --widths 64")   # a sweep's list


# (setting, another valid value): whether it changes the compiled shape, and the family.
CHANGES = [("model.width", 128), ("model.depth", 3), ("model.param", "mup"), ("optim.name", "lion"),
           ("optim.lr", 1e-3), ("optim.schedule", "wsd"), ("optim.clip", 0.5), ("optim.clip", 0.0), ("batch", 16),
           ("data.source", "builtin"), ("precision", "bf16"), ("tokens", 400_000), ("seed", 3), ("evals", 5),
           ("target_loss", 1.5)]


@pytest.mark.parametrize("path, value", CHANGES)
def test_the_settings_table_says_what_is_shape_and_what_is_family(path, value):
    from lab import schema
    from lab.family import family_key
    base = RunConfig()
    other = RunConfig.from_settings({path: value})
    s = schema.BY_PATH[path]
    in_shape = s.shape == "value" or (s.shape == "on" and (value > 0) != (base.value(path) > 0))
    assert (other.shape_id != base.shape_id) == in_shape, path
    assert (family_key(other) != family_key(base)) == s.family, path


def test_later_fields_at_their_default_stay_out_of_the_run_id():
    from lab import schema
    from lab.config import LATER_FIELDS
    assert LATER_FIELDS == {s.path: default(s.path) for s in schema.SETTINGS if s.later}
    canonical = json.loads(RunConfig().to_json())
    for path in LATER_FIELDS:
        part, _, name = path.rpartition(".")
        assert name not in (canonical[part] if part else canonical), path
    assert "patience" in json.loads(RunConfig(patience=3).to_json())
