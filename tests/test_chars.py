"""Character tokens (`DataConfig.tokenizer = "chars"`): counted like the byte model, Chinese text as
one token a character, refusals that say how to fix them, and samples that never show �."""

import math
import re
from pathlib import Path

import pytest

from conftest import tiny
from lab.config import ConfigError, DataConfig
from lab.counting import flops_per_token, param_counts
from lab.data import OTHER, builtin_text, char_table, load_dataset, unigram_loss
from lab.store import RunStore

LOCALE = Path(__file__).resolve().parents[1] / "lab" / "locale" / "zh" / "LC_MESSAGES"


def chinese_text() -> str:
    """The lab's own Chinese: every translation of its two catalogs, the app's and the lessons'
    (about 61,000 characters, half of them Han, 2.1 UTF-8 bytes a character)."""
    from babel.messages.pofile import read_po
    out = []
    for name in ("scaling_lab.po", "lessons.po"):
        with open(LOCALE / name, "rb") as f:
            out += [m.string for m in read_po(f) if m.id and m.string]
    return "\n".join(out)


@pytest.fixture(scope="module")
def ascii_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ascii") / "docs.txt"
    path.write_text(builtin_text().encode("ascii", errors="ignore").decode("ascii")[:120_000], encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def zh_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("zh") / "zh.txt"
    path.write_text(chinese_text(), encoding="utf-8")
    return str(path)


def test_on_ascii_text_characters_are_the_bytes_renamed(ascii_file):
    """With at most 255 distinct characters every byte is a character: the same number of tokens in
    each split, one token per byte value, the same unigram baseline and bits per byte."""
    b = load_dataset(DataConfig(source="file", path=ascii_file))
    c = load_dataset(DataConfig(source="file", path=ascii_file, tokenizer="chars"), vocab=256)
    assert (len(c.train), len(c.val)) == (len(b.train), len(b.val))
    assert c.tokenizer.kind == "chars" and b.tokenizer.kind == "bytes" and c.vocab == b.vocab == 256
    assert c.bytes_per_token == 1.0 and c.coverage == 1.0 and 0 not in set(c.train.tolist())
    pairs = set(zip(b.train.tolist(), c.train.tolist()))
    assert len(pairs) == len({x for x, _ in pairs}) == len({y for _, y in pairs})    # a one-to-one renaming
    assert math.isclose(c.unigram_loss, b.unigram_loss, rel_tol=1e-12)
    assert c.fingerprint != b.fingerprint


def test_the_table_is_the_most_frequent_characters_ties_by_code_point():
    assert char_table("bbbaaccd", vocab=3) == "ba"
    assert char_table("dcba", vocab=10) == "abcd"                 # every count 1: by code point
    assert char_table("尺尺度", vocab=2) == "尺"


def test_chinese_text_is_one_token_a_character(zh_file):
    text = chinese_text()
    b = load_dataset(DataConfig(source="file", path=zh_file))
    c = load_dataset(DataConfig(source="file", path=zh_file, tokenizer="chars"), vocab=4096)
    assert len(c.train) + len(c.val) == len(text)
    assert 2.0 < (len(b.train) + len(b.val)) / len(text) < 3.0       # Han 3 bytes, the rest 1
    assert 2.0 < c.bytes_per_token < 3.0 and c.coverage > 0.99
    assert c.tokenizer.decode(c.tokenizer.encode("尺度定律")) == "尺度定律"
    small = load_dataset(DataConfig(source="file", path=zh_file, tokenizer="chars"), vocab=64)
    assert len(small.tokenizer.chars) == 63 and small.coverage < 0.9 and 0 in set(small.val.tolist())
    assert small.unigram_loss < c.unigram_loss                      # fewer classes: one for every rare character
    shown = small.tokenizer.decode(small.val[:200])
    assert OTHER in shown and "\ufffd" not in shown and len(shown) == 200
    expected = unigram_loss(c.train, c.val, 4096)
    assert math.isclose(c.unigram_loss, expected)


@pytest.mark.parametrize("data, vocab, words", [
    ({"tokenizer": "bytes"}, 128, "use vocab=256, or tokenizer=chars"),
    ({"source": "markov", "tokenizer": "chars"}, 256, "use tokenizer=bytes with it"),
    ({"tokenizer": "words"}, 256, "unknown tokenizer"),
])
def test_what_cannot_be_counted_is_refused_with_a_fix(data, vocab, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        tiny(model__vocab=vocab, **{f"data__{k}": v for k, v in data.items()})


def test_a_character_model_of_chinese_trains_is_counted_by_its_vocabulary_and_writes_characters(zh_file, tmp_path):
    cfg = tiny(data__source="file", data__path=zh_file, data__tokenizer="chars", model__vocab=1024,
               tokens=8 * 32 * 120)              # 120 steps: 0.4 nats below the unigram baseline
    store = RunStore(tmp_path / "store")
    r = store.train(cfg)
    data = load_dataset(cfg.data, cfg.model.vocab)
    assert r.status == "done" and r.eval_loss < r.unigram_loss == data.unigram_loss
    assert r.params_total == param_counts(cfg.model).total and r.flops_per_token == flops_per_token(cfg.model)
    assert r.params_embedding >= 1024 * 32 and r.tokens == cfg.tokens_trained
    assert math.isclose(r.eval_bpb, r.eval_loss / math.log(2) / data.bytes_per_token)
    # counted as the byte model is: the model built holds exactly the parameters counted from its vocabulary
    import equinox as eqx
    import jax
    assert sum(x.size for x in jax.tree.leaves(eqx.filter(r.model, eqx.is_array))) == r.params_total
    assert r.params_total - param_counts(tiny().model).total == 2 * (1024 - 256) * 32    # table and head rows
    from lab.sample import sample
    text = sample(store, r.run_id, "尺度", length=200, temperature=1.0)
    assert len(text) == 200 and "\ufffd" not in text                # one character a token, none cut
    assert set(text) <= set(data.tokenizer.chars) | {OTHER}
    han = sum("\u4e00" <= ch <= "\u9fff" for ch in text)
    assert han > 20, text                                              # it writes Chinese (the text: 48 % Han)


def test_the_command_line_takes_character_tokens_and_describes_them(zh_file, capsys):
    import json

    from lab.cli import main
    assert main(["train", "--data", zh_file, "--tokenizer", "chars", "--vocab", "512", "--width", "32",
                 "--tokens", "1e4", "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert "character tokens: 511 characters" in plan["data"] and "bytes per token" in plan["data"]
    assert plan["params_total"] == param_counts(tiny(model__vocab=512, data__tokenizer="chars",
                                                     model__depth=2, model__heads=4,
                                                     model__context=64).model).total
    assert main(["train", "--vocab", "100", "--dry-run"]) == 2
    assert "--vocab 256" in capsys.readouterr().err
