"""Are a family law's intervals and warnings what they say? Ladders simulated from a known law
at the default ladder's own sizes, seeds and seed spreads (README, "The default ladder"), fitted
by `lab.laws.fit_sizes` as the app and `scaling-lab fit --holdout` fit real ones (issue 20).

Each warning must fire on the failure it names and stay quiet, mostly, on a correct law; the
95 % intervals must cover about 95 % of the held-out truths without being much wider than the
real error. The figures the README quotes are these, with more datasets
(`python -m tests.test_law_calibration` prints them).
"""

import math

import numpy as np
import pytest

from lab import laws

# the default ladder (lab.plans.LADDER_WIDTHS) as measured on 2026-12-01: N, seeds, mean, seed sd
WIDTHS = (40, 48, 56, 64, 80, 96, 112, 136)
N = np.array([62560, 84288, 109088, 136960, 201920, 279168, 368704, 526048], float)
SEEDS = (4, 4, 4, 4, 4, 2, 2, 2)
MEAN = np.array([1.9643, 1.8156, 1.6887, 1.5849, 1.4373, 1.3468, 1.2807, 1.2079])
SD = np.array([0.0235, 0.0143, 0.0112, 0.0050, 0.0051, 0.0027, 0.0018, 0.0034]) / MEAN    # of log loss
E, A, ALPHA = 0.851, 519.0, 0.555       # the law fitted to those runs: the simulated truth

WARNINGS = {"small end": "smallest fitted size", "largest": "largest fitted size", "scatter": "reduced χ²",
            "held out": "held-out size", "E pinned": "pinned near 0", "E at the floor": "just under",
            "interval": "interval of the prediction", "span": "span only", "reach": "reaches"}


def truth(n):
    return E + A * n ** -ALPHA


def ladder(rng, law=lambda n, i: truth(n)) -> list:
    return [laws.Size(width=w, depth=2, N=int(n), D=int(20 * n), epochs=0.5,
                      losses=tuple(law(n, i) * np.exp(sd * rng.standard_normal(k))))
            for i, (w, n, k, sd) in enumerate(zip(WIDTHS, N, SEEDS, SD))]


def simulate(n: int, law=lambda n, i: truth(n), seed: int = 0) -> dict:
    """Fit `n` simulated ladders (the two largest sizes held out): coverage of the truth, half-widths
    against the real errors, how often each warning fired, how often the law was trusted."""
    rng = np.random.default_rng(seed)
    cover, err, half = np.zeros(2), [[], []], [[], []]
    fired, trusted = dict.fromkeys(WARNINGS, 0), 0
    for _ in range(n):
        fam = laws.fit_sizes(ladder(rng, law), holdout=2, draws=20, tokens_per_param=20.0)
        trusted += fam.trusted
        text = " | ".join(fam.warnings)
        for key, words in WARNINGS.items():
            fired[key] += words in text
        for j, p in enumerate(fam.held_out):
            t = truth(p.N)
            cover[j] += p.low <= t <= p.high
            err[j].append(abs(math.log(p.predicted / t)))
            half[j].append(math.log(p.high / p.low) / 2)
    real95 = [float(np.percentile(e, 95)) for e in err]
    return {"coverage": (cover / n).tolist(), "real95": real95,
            "width_ratio": [float(np.median(h)) / r for h, r in zip(half, real95)],
            "fired": {k: v / n for k, v in fired.items()}, "trusted": trusted / n}


@pytest.fixture(scope="module")
def correct():
    return simulate(200)


def test_intervals_cover_the_truth_and_are_not_much_wider_than_the_error(correct):
    for coverage, ratio in zip(correct["coverage"], correct["width_ratio"]):
        assert 0.90 <= coverage <= 0.99, correct
        assert ratio <= 1.5, correct
        assert ratio >= 0.8, correct                     # not narrow either: that would undercover


def test_a_correct_law_raises_each_warning_rarely_and_is_trusted(correct):
    for key, rate in correct["fired"].items():
        assert rate <= 0.05, (key, correct["fired"])
    assert correct["trusted"] >= 0.80, correct


def test_a_bent_small_end_is_distrusted():
    """The small models above the law of the large ones (+8 %, +3 %, +1 % at the three smallest):
    the law of the others and the held-out sizes say so."""
    bent = simulate(100, lambda n, i: truth(n) * (1 + 0.08 * (n / N[0]) ** -3), seed=1)
    assert bent["trusted"] <= 0.20, bent


@pytest.mark.parametrize("failure, law, warning, at_least", [
    ("the smallest size 4 % above the law", lambda n, i: truth(n) * (1.04 if i == 0 else 1), "small end", 0.7),
    ("the largest fitted size 2 % below", lambda n, i: truth(n) * (0.98 if i == 5 else 1), "largest", 0.7),
    ("no floor at all: a pure power law", lambda n, i: 30 * n ** -0.22, "E pinned", 0.4),
])
def test_each_warning_fires_on_the_failure_it_names(failure, law, warning, at_least):
    out = simulate(80, law, seed=2)
    assert out["fired"][warning] >= at_least, (failure, out["fired"])


def test_design_warnings_fire_on_a_short_span_and_a_far_reach():
    rng = np.random.default_rng(3)
    sizes = ladder(rng)
    short = laws.fit_sizes(sizes[2:6], draws=20)                           # widths 56-96: 2.6x in N
    assert any("span only" in w for w in short.warnings)
    beyond = laws.Size(width=400, depth=2, N=int(10 * N[4]), D=int(200 * N[4]), epochs=0.5,
                       losses=(truth(10 * N[4]),))
    far = laws.fit_sizes(sizes[:5] + [beyond], holdout=1, draws=20)       # 3.2x fitted, 10x beyond
    assert any("reaches 10.0x" in w for w in far.warnings), far.warnings
    assert "reaches" not in " ".join(laws.fit_sizes(sizes, holdout=2, draws=20).warnings)


if __name__ == "__main__":
    import json
    print(json.dumps({"correct law": simulate(2000), "bent small end": simulate(1000, lambda n, i: truth(n) * (
        1 + 0.08 * (n / N[0]) ** -3), seed=1)}, indent=1))
