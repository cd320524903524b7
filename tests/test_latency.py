"""The time to write a token, by size (lab.latency): measured with the lab's own sampler."""

import pytest

from lab.config import ModelConfig
from lab.counting import flops_per_token, param_counts
from lab.latency import measure_latency


def test_a_bigger_model_takes_longer_per_token_and_is_counted_as_the_sampler_runs_it():
    small, big = ModelConfig(width=32, depth=1, heads=2, context=32), ModelConfig(width=512, depth=2, heads=4, context=32)
    a, b = measure_latency(small, tokens=16, repeats=3), measure_latency(big, tokens=16, repeats=3)
    assert (a.params, b.params) == (param_counts(small).total, param_counts(big).total)
    assert b.flops == 32 * flops_per_token(big) // 3 > 100 * a.flops       # one forward pass over the context
    assert b.ms_per_token > 2 * a.ms_per_token > 0                           # measured about 15x here
    assert a.compile_s > 0 and a.spread_ms >= 0 and a.device


def test_nothing_to_time_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        measure_latency(ModelConfig(width=32, depth=1, heads=2, context=32), tokens=0)
