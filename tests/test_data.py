import math

import numpy as np
import pytest

from lab.config import ConfigError, DataConfig
from lab.data import (BLOCK_BYTES, blocks, builtin_text, epochs, eval_windows, held_out, load_dataset, markov_chain,
                      sample_markov, stdlib_files, unigram_loss)


def test_builtin_corpus_is_real_english_deterministic_and_large():
    text = builtin_text()
    assert len(text) > 300_000
    assert text == builtin_text()
    words = text.lower().split()
    common = sum(words.count(w) for w in ("the", "of", "and", "is", "a", "to"))
    assert common / len(words) > 0.1            # English prose, not code or noise
    ds = load_dataset(DataConfig(source="builtin"))
    assert ds.vocab == 256 and len(ds.val) > 0.09 * (len(ds.train) + len(ds.val))
    assert 2.5 < ds.unigram_loss < 4.0           # bytes of English: about 3.2 nats (4.6 bits)


def test_stdlib_corpus_is_big_deterministic_and_held_out_by_block():
    files = stdlib_files()
    assert len(files) > 300 and files == sorted(files)
    assert not any(name.startswith(("test/", "pydoc_data/")) or "/tests/" in name for name, _ in files)
    ds = load_dataset(DataConfig())            # the default corpus
    assert ds.name == "stdlib" and len(ds.train) > 5_000_000   # 20 tokens/param at 1M params: under 4 epochs
    assert ds.fingerprint == load_dataset(DataConfig(val_fraction=0.1)).fingerprint
    # blocks end at line ends and put the file back together
    raw = dict(files)["json/decoder.py"]
    pieces = blocks(raw)
    assert b"".join(pieces) == raw and all(p.endswith(b"\n") for p in pieces[:-1])
    assert all(len(p) >= BLOCK_BYTES for p in pieces[:-1]) and len(pieces) > 2
    # blocks go to validation by a hash of file and index: about the fraction asked, from
    # every part of the library (not a tail), each block in exactly one part
    names = [f"{name}:{i}" for name, raw in files for i, _ in enumerate(blocks(raw))]
    val_names = [n for n in names if held_out(n, 0.1)]
    assert 0.07 < len(val_names) / len(names) < 0.13
    assert len({n.split("/")[0] for n in val_names}) > 20
    assert 0.07 < len(ds.val) / (len(ds.train) + len(ds.val)) < 0.13
    first = next(b for name, raw in files for i, b in enumerate(blocks(raw)) if held_out(f"{name}:{i}", 0.1))
    assert bytes(ds.val[:len(first)]) == first
    other = load_dataset(DataConfig(val_fraction=0.2))
    assert len(other.val) > len(ds.val) and other.fingerprint != ds.fingerprint


def test_markov_entropy_rate_is_exact():
    chain = markov_chain(order=2, symbols=8, zipf=1.0, seed=3)
    assert np.allclose(chain.probs.sum(1), 1) and math.isclose(chain.stationary.sum(), 1)
    # stationarity: pi P = pi over contexts
    n = 8 ** 2
    nxt = (np.arange(n)[:, None] * 8 + np.arange(8)[None, :]) % n
    moved = np.bincount(nxt.ravel(), weights=(chain.stationary[:, None] * chain.probs).ravel(), minlength=n)
    assert np.allclose(moved, chain.stationary, atol=1e-12)
    # the empirical log-loss of the true model on a long sample converges to the entropy rate
    xs = sample_markov(chain, 200_000, seed=3)
    ctx = xs[:-2] * 8 + xs[1:-1]
    empirical = -np.log(chain.probs[ctx, xs[2:]]).mean()
    assert abs(empirical - chain.entropy_rate) < 0.01
    assert 0 < chain.entropy_rate < math.log(8)


def test_markov_dataset_reports_floor_below_unigram():
    ds = load_dataset(DataConfig(source="markov", markov_order=1, markov_symbols=16, markov_tokens=50_000))
    assert ds.entropy_rate is not None and ds.entropy_rate < ds.unigram_loss
    assert set(np.unique(ds.train)) <= set(range(97, 97 + 16))


@pytest.mark.parametrize("content, words", [
    (b"", "is empty"),
    (b"\x00\x01\x02" * 1000, "looks binary"),
    (b"\xff\xfe" + "caf\u00e9".encode("latin-1") * 1000, "not valid UTF-8"),
    (b"short text", "too small"),
])
def test_bad_text_files_are_refused_clearly(tmp_path, content, words):
    path = tmp_path / "data.txt"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=words):
        load_dataset(DataConfig(source="file", path=str(path)))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_dataset(DataConfig(source="file", path=str(tmp_path / "nope.txt")))
    with pytest.raises(ConfigError, match="is a folder"):
        load_dataset(DataConfig(source="file", path=str(tmp_path)))


def test_user_text_file_and_reload_on_change(tmp_path):
    path = tmp_path / "story.txt"
    path.write_text("Once upon a time there was a small model. " * 100, encoding="utf-8")
    ds = load_dataset(DataConfig(source="file", path=str(path)))
    assert ds.name == "story.txt" and len(ds.train) + len(ds.val) == len(path.read_bytes())
    path.write_text("A different and somewhat longer story about scaling. " * 200, encoding="utf-8")
    assert load_dataset(DataConfig(source="file", path=str(path))).fingerprint != ds.fingerprint


def test_huggingface_local_text_file(tmp_path):
    pytest.importorskip("datasets", reason="the optional `datasets` package is not installed")
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(f"line {i} of a small local dataset" for i in range(300)), encoding="utf-8")
    ds = load_dataset(DataConfig(source="hf", path=str(path)))
    assert len(ds.train) > 1000


def test_unigram_baseline_and_epochs():
    train = np.array([97] * 90 + [98] * 10, np.uint8)
    val = np.array([97, 98], np.uint8)
    counts = np.bincount(train, minlength=256) + 1.0
    expected = -np.log(counts[[97, 98]] / counts.sum()).mean()
    assert math.isclose(unigram_loss(train, val), expected)
    ds = load_dataset(DataConfig())
    assert math.isclose(epochs(2 * len(ds.train), ds), 2.0)


def test_eval_windows_spread_over_the_held_out_text():
    val = (np.arange(1000) % 256).astype(np.uint8)
    w = eval_windows(val, eval_tokens=256, context=32)
    assert w.shape == (8, 33) and np.all(np.diff(w[:, 0].astype(int) % 256) != 0)
    starts = np.array([int(np.flatnonzero(val == row[0])[0]) for row in w])   # positions < 256 are unique
    assert w[-1, -1] == val[(len(val) - 1 - 32) // 8 * 7 + 32]                # the last window near the end
    assert np.all(np.diff(np.sort(starts)) >= 0)
    whole = eval_windows(val[:100], eval_tokens=4096, context=32)           # short text: consecutive windows
    assert whole.shape == (3, 33) and whole[1, 0] == whole[0, 32]
    assert np.array_equal(eval_windows(val, 256, 32), w)                    # fixed: the same every call
