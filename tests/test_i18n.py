"""English and 简体中文: the catalogs match the source, the Chinese app shows no English words
outside the allowed names, a link and the menu switch the language, the lessons come in Chinese."""

import argparse
import asyncio
import html
import json
import re

import pytest

from lab import i18n
from lab.catalogs import problems

CJK = re.compile(r"[\u4e00-\u9fff]")


pytestmark = pytest.mark.usefixtures("app_env")


@pytest.mark.parametrize("domain", [i18n.DOMAIN, i18n.LESSONS])
def test_every_string_of_the_source_is_in_the_catalog_and_translated(domain):
    bad = problems("zh", domain)
    assert not bad, f"{len(bad)} problems, e.g.:\n" + "\n".join(bad[:15])


def test_english_prose_in_a_lessons_code_is_found_unless_marked_or_data():
    from lab.catalogs import _specs, unmarked_prose
    code = ('print("quick mode", x)\n'
            'print(f"trained {n} epochs")\n'
            'print(_("trained {n} epochs").format(n=n))\n'
            'ask("the doctor said that ")  # i18n: keep\n'
            'df[["eval_loss", "params_total"]]\n'
            'fig.update_layout(yaxis_title="validation loss", height=3)\n')
    assert [line for line, _text in unmarked_prose(code)] == [1, 2, 6]
    assert ("p.N", ">9,.0f", None) in _specs("N = {p.N:>9,.0f}") != _specs("N = {p.N}")


def test_the_language_is_validated_and_switched():
    assert i18n.lang_of("zh-CN") == i18n.lang_of("zh_Hans") == i18n.lang_of("中文") == "zh"
    with pytest.raises(ValueError, match="Traditional Chinese"):
        i18n.lang_of("zh-TW")
    with pytest.raises(ValueError, match="unknown language 'fr'.*en, zh"):
        i18n.use("fr")
    assert i18n.current() == "en"
    i18n.use("zh")
    assert i18n._("Train") != "Train" and CJK.search(i18n._("Train"))
    i18n.use("en")
    assert i18n._("Train") == "Train"


def _texts(widget, out=None):
    """Every text a widget tree shows: descriptions, tooltips, placeholders, labels and options, tab
    titles, HTML (tags and entities stripped), a figure's title, axes and trace names."""
    out = [] if out is None else out
    for attr in ("description", "tooltip", "placeholder", "button_style_text"):
        v = getattr(widget, attr, None)
        if isinstance(v, str) and v:
            out.append(v)
    cls = type(widget).__name__
    if cls in ("HTML", "Label", "HTMLMath"):
        text = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", widget.value, flags=re.S)
        out.append(html.unescape(re.sub(r"<[^>]+>", " ", text)))
    for label in getattr(widget, "_options_labels", ()) or ():
        out.append(label)
    out += [t for t in getattr(widget, "titles", ()) or () if t]
    if cls == "FigureWidget":
        lay = widget.layout
        for part in (lay.title, lay.xaxis.title, lay.yaxis.title):
            if part is not None and part.text:
                out.append(part.text)
        out += [t.name for t in widget.data if t.name]
    for child in getattr(widget, "children", ()) or ():
        _texts(child, out)
    return out


def _english(texts, allowed=()):
    """The texts with Latin-letter words outside lab.i18n.LATIN_ALLOWED (and `allowed`)."""
    bad = []
    for t in texts:
        words = [w for w in i18n.latin_words(t) if w not in allowed]
        if words:
            bad.append((words, t[:120]))
    return bad


def _without_identifiers(text: str) -> str:
    """A text less what a Chinese page shows in Latin letters on purpose: a setting's key beside its
    label ("宽度 (width)"), link and command-line spellings (`?lang=zh`, `width=64`, `--lr`), preset keys
    in a link, the language menu's own names."""
    from lab import schema
    keys = {s.key for s in schema.SETTINGS}
    text = re.sub(r"[（(]([a-z_]+)[)）]", lambda m: "" if m.group(1) in keys else m.group(0), text)
    text = re.sub(r"[?&]?[a-z_]+=[^\s&，。；）)]*", "", text)
    text = re.sub(r"--[a-z-]+", "", text)
    for name in i18n.LANGS.values():
        text = text.replace(name, "")
    return text.replace("UTF-8", "")


def _teacher(monkeypatch, token="s3cret"):
    import hashlib
    monkeypatch.setenv("SCALING_LAB_TEACHER_SHA256", hashlib.sha256(token.encode()).hexdigest())
    return token


def test_the_chinese_app_shows_no_english_outside_the_allowed_names(monkeypatch):
    from widgets import Lab
    token = _teacher(monkeypatch)
    app = Lab(query=f"?teacher={token}&lang=zh")
    assert app.state.lang == "zh" and app.state.role == "teacher"

    async def train():                            # a run trained: its label, the runs table, the live plot
        task = app.controller.train.start()
        assert task is not None, app.state.error
        return await asyncio.wait_for(task, 300)

    asyncio.run(train())
    for key in app.PANELS:
        app.panel(key)
    app.controller.scaling.fit()                  # too few runs: the reason, in words
    app.controller.form.set_values(heads=7)       # a refused setting: the error as the app spells it
    app.form.explain.value = True                 # every control's help written out
    assert CJK.search(app.state.config_error), app.state.config_error
    texts = _texts(app) + [app.state.notice, app.state.error, app.state.config_error, *app.state.readouts.values()]
    assert sum(bool(CJK.search(t)) for t in texts) > 100
    bad = _english([_without_identifiers(t) for t in texts])
    assert not bad, f"{len(bad)} texts with English words, e.g.:\n" + "\n".join(map(str, bad[:25]))


def test_a_link_asks_for_chinese_and_the_menu_switches_back(monkeypatch):
    from widgets import Lab
    app = Lab(query="?lang=zh&width=48")
    assert app.state.lang == "zh" and app.lang.value == "zh"
    assert CJK.search(app.state.notice) and app.state.form["width"] == 48
    assert CJK.search(app.tabs.titles[0])
    assert "lang=zh" in app.state.share                          # a shared link keeps the language
    old_form = app.form
    app.lang.value = "en"                                        # the language menu
    assert app.state.lang == "en" and i18n.current() == "en"
    assert app.form is not old_form and old_form.comm is None    # the views were built again, the old closed
    assert app.tabs.titles[0] == "Sweep" and app.state.form["width"] == 48
    assert "lang=" not in app.state.share and app.state.notice == "language: English"
    from ipywidgets.widgets.widget import _instances
    app.panel("scaling")
    app.lang.value = "zh"
    app.lang.value = "en"
    open_models = len(_instances)
    for lang in ("zh", "en", "zh", "en"):                       # switching back and forth leaves nothing behind
        app.lang.value = lang
    print("open widget models", open_models, "->", len(_instances))
    assert len(_instances) <= open_models + 5, (open_models, len(_instances))
    app.controller.form.set_values(width=40)                     # the old views stopped observing: no error
    assert app.state.error == "" and app.form.inputs["width"].value == 40
    bad = Lab(query="?lang=klingon")
    assert bad.state.lang == "en" and "unknown language 'klingon'" in bad.state.error


def test_scaling_lab_lessons_writes_the_chinese_lessons_from_the_one_source(tmp_path):
    from lab.cli.app import _lessons, notebooks_folder
    _lessons(argparse.Namespace(folder=str(tmp_path / "zh"), force=False, lang="zh", quick=False))
    src = sorted(notebooks_folder().glob("lesson*.ipynb"))
    assert len(src) == 10
    for path in src:
        en = json.loads(path.read_text(encoding="utf-8"))
        zh = json.loads((tmp_path / "zh" / path.name).read_text(encoding="utf-8"))
        assert zh["metadata"]["scaling_lab_lang"] == "zh"
        code_en = ["".join(c["source"]) for c in en["cells"] if c["cell_type"] == "code"]
        code_zh = ["".join(c["source"]) for c in zh["cells"] if c["cell_type"] == "code"]
        assert code_zh[0] == "from lab import i18n; i18n.use('zh')  # 简体中文\n" + code_en[0]
        assert code_zh[1:] == code_en[1:], path.name              # one source: the code is the English lesson's
        for c_en, c_zh in zip(en["cells"], zh["cells"]):
            if c_en["cell_type"] == "markdown":
                text_en, text_zh = "".join(c_en["source"]), "".join(c_zh["source"])
                assert CJK.search(text_zh) and text_zh != text_en, (path.name, text_en[:80])
                assert text_zh.count("$") == text_en.count("$"), (path.name, text_en[:80])
    for lang, folder in (("zh", tmp_path / "zh"), ("en", tmp_path / "en")):
        if lang == "en":
            _lessons(argparse.Namespace(folder=str(folder), force=False, lang="en", quick=False))
        sheet = (folder / "worksheets" / "lesson4_optimizers.html").read_text(encoding="utf-8")
        assert sheet.count("<li>") == 5                          # the lesson's five questions, nothing else
        assert "Expected numbers" not in sheet and "What usually goes wrong" not in sheet
        assert ("优化器" in sheet) == (lang == "zh") and ("Which optimizer" in sheet) == (lang == "en")
    _lessons(argparse.Namespace(folder=str(tmp_path / "quick"), force=False, lang="zh", quick=True))
    first = next(c for c in json.loads((tmp_path / "quick" / src[0].name).read_text(encoding="utf-8"))["cells"]
                 if c["cell_type"] == "code")
    assert "".join(first["source"]).startswith('import os; os.environ["SCALING_LAB_QUICK"] = "1"')
    with pytest.raises(Exception, match="already holds"):        # nothing overwritten without --force
        _lessons(argparse.Namespace(folder=str(tmp_path / "en"), force=False, lang="en", quick=False))
    with pytest.raises(Exception, match="unknown language"):
        _lessons(argparse.Namespace(folder=str(tmp_path / "x"), force=False, lang="xx", quick=False))


def test_every_action_that_reports_errors_is_named_in_words():
    """The error area names the failed action ("拟合：…"): every `reported` method has its words."""
    import importlib
    import inspect
    import pkgutil

    import widgets
    from widgets.text import ACTIONS
    names = set()
    for mod in pkgutil.iter_modules(widgets.__path__):
        module = importlib.import_module(f"widgets.{mod.name}")
        for _name, cls in inspect.getmembers(module, inspect.isclass):
            for attr, fn in vars(cls).items():
                if getattr(getattr(fn, "__code__", None), "co_qualname", "").startswith("reported."):
                    names.add(attr)
    assert len(names) > 20
    assert names <= set(ACTIONS), sorted(names - set(ACTIONS))


def test_generated_bytes_never_show_a_cut_character():
    from lab.data import BYTES
    text = "尺度定律 scaling".encode()
    for cut in range(len(text) + 1):                       # every place a sample can end
        out = BYTES.decode(list(text[:cut]))
        assert "\ufffd" not in out and "尺度定律 scaling".startswith(out)
    assert BYTES.decode(list(b"ab\xe5\xb0cd\xff")) == "abcd"   # bytes that are no character are left out


def test_what_the_store_keeps_reads_in_english_first_and_in_the_pages_language_after(zh):
    """A note or an error written by a process whose language is Chinese (a page kernel) still has
    the English first line that `scaling-lab runs` shows; a page spells it from its parts."""
    from lab.config import ConfigError
    from lab.i18n import N_
    from lab.schema import Name, Say, error_text, kept, spell_error
    from lab.store import process_ended
    note = process_ended("host:1")
    assert note.splitlines()[0] == "its process (host:1) ended before the run finished"
    assert spell_error(note) == "训练它的进程（host:1）在运行完成前就结束了"
    err = error_text(ConfigError(Say(N_("{name} must be {what}"), name=Name("optim.lr"), what="above 0")))
    assert err.splitlines()[0] == "ConfigError: learning rate must be above 0"
    assert spell_error(err).startswith("学习率必须")
    assert kept(Say(N_("its worker stopped"))).splitlines()[0] == "its worker stopped"
