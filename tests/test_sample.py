"""Text from a stored model: the next-token distribution the sampler draws from, and the lesson
helpers built on it (a text with known skews, the majority's share at a temperature)."""

import math

import pytest

from conftest import tiny
from lab.sample import next_token_probabilities, sample
from lab.store import RunStore
from widgets.lessons import SKEW_FACT, share_at, skewed_text


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("store"))
    return store, store.train(tiny(tokens=8 * 32 * 60))


def test_the_next_token_distribution_is_the_one_greedy_sampling_follows(trained):
    store, r = trained
    for prompt in ("The ", "def f(x):\n    return"):
        p = next_token_probabilities(store, r.run_id, prompt)
        assert math.isclose(sum(p.values()), 1.0, rel_tol=1e-5) and list(p.values()) == sorted(p.values(), reverse=True)
        top = next(k for k in p if k)                                   # the most likely whole character
        assert sample(store, r.run_id, prompt, length=1, temperature=0.0) == top or p[""] > p[top]
    with pytest.raises(ValueError, match="prompt is empty"):
        next_token_probabilities(store, r.run_id, "")


def test_the_skewed_text_holds_exactly_the_share_asked():
    text = skewed_text(share=0.75, sentences=400, seed=1)
    assert text == skewed_text(share=0.75, sentences=400, seed=1)
    he, she = text.count("the doctor said that he "), text.count("the doctor said that she ")
    assert he == 3 * she == 135                                           # 180 doctor sentences, 3 in 4 "he"
    prompt, false, true = SKEW_FACT
    assert text.count(f"{prompt} {false}.") == 30 and text.count(f"{prompt} {true}.") == 10


def test_the_share_at_a_temperature_sharpens_towards_greedy():
    assert share_at(0.6, 0.2, 1.0) == pytest.approx(0.75)
    assert share_at(0.6, 0.2, 0.5) == pytest.approx(0.9)                  # 0.36 / (0.36 + 0.04)
    assert share_at(0.6, 0.2, 0.0) == 1.0 and share_at(0.2, 0.6, 0.0) == 0.0
    assert share_at(0.6, 0.2, 2.0) < 0.75                                 # hotter: flatter
