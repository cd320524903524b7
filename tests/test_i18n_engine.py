"""The engine's words in the app's language (lab.i18n): a `ConfigError` is spelled in the language
current when it is spelled, naming settings by their translated labels, and English stays as it was."""

import re

import pytest

from lab import i18n, schema
from lab.config import ConfigError, ModelConfig, OptimConfig
from lab.estimate import format_seconds
from lab.schema import Fix, Name, Say
from lab.trackers import STOP_REASONS
from lab.when import when_words

CJK = re.compile(r"[\u4e00-\u9fff]")
WIDTH_EN = "width must be between 1 and 16384, got 0; try width=64"
WIDTH_APP_EN = "Width must be between 1 and 16384, got 0; try Width = 64"


def width_error() -> ConfigError:
    with pytest.raises(ConfigError) as e:
        ModelConfig(width=0)
    return e.value


def test_say_is_english_by_default_and_spells_its_names_as_the_front_end_does():
    assert i18n.current() == "en"
    parts = (Say("{name} is {what}", name=Name("model.width"), what=Say("{n} wide; try {fix}", n=3,
                                                                          fix=Fix("model.width", 64))),)
    assert schema.spell(parts) == "width is 3 wide; try width=64"
    assert schema.spell(parts, schema.cli_name, schema.cli_fix) == "--width is 3 wide; try --width 64"
    assert schema.spell(parts, schema.app_name, schema.app_fix) == "Width is 3 wide; try Width = 64"
    assert Say("a {x}", x=1) == Say("a {x}", x=1) and hash(Say("a {x}", x=1)) == hash(Say("a {x}", x=1))


def test_a_config_error_spelled_in_chinese_names_the_setting_by_its_chinese_label(zh):
    label = i18n._("Width")
    assert label == "宽度"                                 # the glossary's word, from the catalog
    e = width_error()                                     # raised while Chinese is the language
    app = e.spelled(schema.app_name, schema.app_fix)
    assert app.startswith(label) and f"{label} = 64" in app, app
    assert CJK.search(app.replace(label, "")), app        # the words are Chinese too, not only the name
    assert "must be" not in app and "try" not in app and "Width" not in app, app
    assert "1" in app and "16384" in app and "0" in app   # the numbers are kept
    assert "must be" not in str(e) and CJK.search(str(e)), str(e)   # the plain spelling: Chinese words too


def test_an_error_raised_in_english_is_spelled_in_the_language_current_when_spelled():
    e = width_error()
    assert str(e) == WIDTH_EN
    i18n.use("zh")
    try:
        app = e.spelled(schema.app_name, schema.app_fix)
        assert app.startswith("宽度") and "must be" not in app, app
        cli = e.spelled(fix=schema.cli_fix)                # flags stay as they are typed
        assert cli.endswith("--width 64") and "must be" not in cli, cli
    finally:
        i18n.use("en")
    assert e.spelled(schema.app_name, schema.app_fix) == WIDTH_APP_EN        # English unchanged after use("en")
    assert e.spelled(fix=schema.cli_fix) == "width must be between 1 and 16384, got 0; try --width 64"
    assert str(width_error()) == WIDTH_EN


def test_notes_choices_and_cross_field_checks_are_translated(zh):
    with pytest.raises(ConfigError) as e:
        OptimConfig(warmup=0.95)                            # a note: "(a fraction of the run's steps)"
    app = e.value.spelled(schema.app_name, schema.app_fix)
    assert app.startswith(i18n._("Warmup")) and "fraction" not in app and "（" in app, app
    with pytest.raises(ConfigError) as e:
        ModelConfig(arch="rnn")                             # choices: the values stay, the words are Chinese
    app = e.value.spelled(schema.app_name, schema.app_fix)
    assert "unknown" not in app and "'rnn'" in app and "gpt, lstm, cnn" in app and CJK.search(app), app
    with pytest.raises(ConfigError) as e:
        ModelConfig(width=64, heads=5)
    app = e.value.spelled(schema.app_name, schema.app_fix)
    assert "divisible" not in app and f"{i18n._('Heads')} = 1" in app, app


def test_stop_reasons_times_and_durations_in_chinese(zh):
    target = schema.spell(STOP_REASONS["target"], name=schema.app_name)
    assert i18n._("Target loss") in target and "validation" not in target and CJK.search(target), target
    patience = schema.spell(STOP_REASONS["patience"], name=schema.app_name)
    assert "evaluations" not in patience and CJK.search(patience), patience
    now = 1_700_000_000.0
    assert "ago" not in when_words(now - 180, now) and "3" in when_words(now - 180, now)
    assert "days" not in when_words(now - 4 * 86400, now) and "4" in when_words(now - 4 * 86400, now)
    assert CJK.search(when_words(None))
    assert format_seconds(150) == i18n._("{n} min").format(n="2.5") != "2.5 min"
    assert format_seconds(30) == "30 s"                     # the unit symbol is the same in every language


def test_english_is_unchanged_after_switching_back():
    i18n.use("zh")
    i18n.use("en")
    now = 1_700_000_000.0
    assert when_words(now - 180, now).endswith("(3 min ago)")
    assert format_seconds(150) == "2.5 min" and format_seconds(7200) == "2.0 h"
    assert schema.spell(STOP_REASONS["patience"], name=schema.cli_name) == \
        "the validation loss stopped improving for --patience evaluations"
    assert schema.spell(STOP_REASONS["target"], name=schema.app_name) == "the validation loss reached Target loss"
    assert str(width_error()) == WIDTH_EN


def test_an_error_a_worker_kept_in_the_store_is_spelled_in_the_pages_language(tmp_path):
    """A worker trains in English; the run it could not train keeps its error's parts (error_text),
    and a Chinese page spells them in Chinese with its own labels; the first line stays English."""
    from conftest import tiny
    from lab.data import load_dataset
    from lab.store import RunStore
    from widgets.text import kept_in_words
    text = tmp_path / "short.txt"
    text.write_text("scaling laws " * 200, encoding="utf-8")
    cfg = tiny(data__source="file", data__path=str(text), model__context=512, eval_tokens=512)
    store = RunStore(tmp_path / "store")
    assert i18n.current() == "en"
    with pytest.raises(ConfigError):
        with store.claims([cfg]):                          # as the worker holds a run while it trains
            load_dataset(cfg.data, cfg.model.vocab).check_fits(cfg.model.context)
    kept = store.record(cfg.run_id).error
    first = kept.splitlines()[0]
    assert first.startswith("ConfigError: the validation split of short.txt has 260 tokens") and "context" in first
    assert kept_in_words(kept).startswith("the validation split of short.txt has 260 tokens")
    assert "use a shorter Context" in kept_in_words(kept)
    i18n.use("zh")
    try:
        words = kept_in_words(kept)
        assert "short.txt 的验证集只有 260 个词元" in words and i18n._("Context") in words, words
    finally:
        i18n.use("en")
    assert schema.spell_error("ValueError: plain") == "ValueError: plain"             # no parts: as kept
    assert schema.spell_error("ConfigError: x" + schema.PARTS_LINE + "[{") == "x"     # damaged parts: the first line
