"""Adversarial inputs to the engine's front doors: every case ends in a clear error or a valid result."""

import dataclasses
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.cli import main
from lab.config import ConfigError, DataConfig, ModelConfig, OptimConfig, RunConfig

junk = st.one_of(st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                 st.none(), st.booleans(), st.lists(st.integers(), max_size=2))


def _fields(cls):
    return [f.name for f in dataclasses.fields(cls)]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([ModelConfig, OptimConfig, DataConfig]), st.data())
def test_sub_configs_accept_or_refuse_clearly(cls, data):
    kwargs = data.draw(st.dictionaries(st.sampled_from(_fields(cls)), junk, max_size=4))
    try:
        cfg = cls(**kwargs)
    except ConfigError as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert cls(**dataclasses.asdict(cfg)) == cfg


@settings(max_examples=200, deadline=None)
@given(width=st.integers(-4, 5000), depth=st.integers(-2, 300), heads=st.integers(-1, 70),
       context=st.integers(-1, 70000), batch=st.integers(-1, 70000), tokens=st.integers(-1, 10**16),
       lr=st.floats(allow_nan=True, allow_infinity=True))
def test_run_configs_accept_or_refuse_clearly(width, depth, heads, context, batch, tokens, lr):
    try:
        cfg = RunConfig(model=ModelConfig(width=width, depth=depth, heads=heads, context=context),
                        optim=OptimConfig(lr=lr), batch=batch, tokens=tokens)
    except ConfigError as e:
        assert str(e)
    else:
        assert cfg.steps >= 1 and math.isfinite(cfg.optim.lr) and cfg.model.width % cfg.model.heads == 0
        assert RunConfig.from_dict(cfg.to_dict()).run_id == cfg.run_id


OPTIONS = ["--width", "--depth", "--heads", "--context", "--batch", "--tokens", "--lr", "--optimizer", "--schedule",
           "--warmup", "--seed", "--seeds", "--data", "--arch", "--positions", "--clip", "--weight-decay", "--evals"]
VALUES = ["0", "-1", "1", "2", "16", "64", "1e5", "2e5", "abc", "nan", "inf", "1e400", "3.5", "", "adam", "lion",
          "wsd", "lstm", "rotary", "markov", "/nonexistent", "1e-3", "10k", "1_000", "--"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(OPTIONS), st.sampled_from(VALUES)), max_size=5))
def test_cli_never_tracebacks(capsys, pairs):
    argv = ["train", "--dry-run", "--no-store"] + [x for pair in pairs for x in pair]
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    assert code in (0, 2), (argv, code, out.err)
    if code == 2:
        lines = out.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (argv, out.err)
    assert "Traceback" not in out.err
