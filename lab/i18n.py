"""The lab's languages: every user-facing string goes through one gettext catalog per language.

    from lab.i18n import _, N_
    _("Train")                          # "训练" once `use("zh")`, "Train" in English
    _("{n} runs").format(n=3)           # never an f-string inside _(): the catalog holds templates
    LABEL = N_("Width")                 # marked for the catalog, translated where it is shown: _(LABEL)

The source language is English; msgids are the English text. Catalogs are gettext PO files in
`lab/locale/<lang>/LC_MESSAGES/scaling_lab.po`, kept with Babel (`make i18n`: extract the
marked strings from `lab/` and `widgets/`, merge them into each catalog); they are compiled in
memory when a language is first used, so no compiled `.mo` file is kept in the tree.

One language at a time in a process: a page kernel serves one page, `scaling-lab app --lang zh`
sets it for every page, `?lang=zh` in a link or the app's language menu switch it (the app
redraws its controls). Pure Python; Babel is imported only to load a catalog other than English.
"""

import functools
import gettext
import io
import os
import pathlib
import re

LANGS = {"en": "English", "zh": "简体中文"}
DOMAIN = "scaling_lab"
LOCALE_DIR = pathlib.Path(__file__).parent / "locale"

_current = "en"


def N_(message: str) -> str:
    """Mark a string for the catalog without translating it now (a module-level table, a label
    translated where it is shown with `_`)."""
    return message


def lang_of(value) -> str:
    """`value` ("zh", "zh-CN", "zh_Hans", "en-US", "中文") as one of LANGS; a clear error otherwise."""
    text = str(value or "").strip().lower().replace("_", "-")
    if text in ("中文", "简体中文", "chinese"):
        return "zh"
    if text in ("english",):
        return "en"
    base = text.split("-")[0]
    if base == "zh" and any(part in ("tw", "hk", "mo", "hant") for part in text.split("-")[1:]):
        raise ValueError(_("{value} is Traditional Chinese, which the lab does not offer yet; zh is Simplified "
                           "Chinese (简体中文)").format(value=repr(value)))
    if base in LANGS:
        return base
    raise ValueError(_("unknown language {value}; choose one of: {choices} (en: English, zh: Simplified "
                       "Chinese), e.g. --lang zh or ?lang=zh").format(value=repr(value), choices=", ".join(LANGS)))


def default_lang() -> str:
    """$SCALING_LAB_LANG (set by `scaling-lab app --lang`), else English."""
    return lang_of(os.environ.get("SCALING_LAB_LANG") or "en")


@functools.lru_cache(maxsize=None)
def catalog(lang: str, domain: str = DOMAIN) -> gettext.NullTranslations:
    """The compiled catalog of `lang` (English: the identity); `domain` "lessons" holds the lessons' text."""
    lang = lang_of(lang)
    if lang == "en":
        return gettext.NullTranslations()
    po = po_path(lang, domain)
    if not po.exists():
        raise FileNotFoundError(f"no catalog for {lang!r} at {po}; run `make i18n` to create it")
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    with po.open("rb") as f:
        cat = read_po(f, locale=_babel_locale(lang), domain=domain)
    buf = io.BytesIO()
    write_mo(buf, cat, use_fuzzy=False)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def _babel_locale(lang: str) -> str:
    return {"zh": "zh_Hans_CN"}.get(lang, lang)


def po_path(lang: str, domain: str = DOMAIN) -> pathlib.Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{domain}.po"


def use(lang) -> str:
    """Make `lang` the process's language (validated); returns it. (The app redraws on its state's
    `lang`, `widgets.form.FormActions.set_lang`.)"""
    global _current
    lang = lang_of(lang)
    catalog(lang)                      # load it now: a missing or broken catalog is an error here, not later
    _current = lang
    return lang


def current() -> str:
    return _current


def _(message: str) -> str:
    """`message` in the current language (itself where the catalog has no translation)."""
    if _current == "en" or not message:
        return message
    return catalog(_current).gettext(message)


# What a Chinese page may still show in Latin letters: names of things, units and symbols that the
# field writes this way in Chinese too (tests/test_i18n.py checks the app against it).
LATIN_ALLOWED = frozenset("""
Scaling Lab AdamW Adam SGD RMSProp Adagrad Adafactor Lion Nesterov GPT LSTM CNN Transformer WSD
MuP μP FLOPs FLOP flops cpu gpu tpu Chinchilla Kaplan Hoffmann IsoFLOP Ray JAX
Voila Plotly PyTorch TensorFlow Hugging Face HF CPU GPU TPU SQLite JSON CSV PNG HTML URL bf16
Python GiB MiB GB MB kB Ctrl Shift CSV fp32 auto cosine constant linear mup standard learned rotary stdlib builtin markov file hf sgd
momentum nesterov adam adamw rmsprop adagrad lion adafactor gpt lstm cnn wsd
""".split())


def latin_words(text: str) -> list[str]:
    """The words in Latin letters of `text` that are not in LATIN_ALLOWED (units such as k, M, G,
    single letters and identifiers with digits are ignored)."""
    words = re.findall(r"[A-Za-z][A-Za-z'-]*[A-Za-z]", text)
    return [w for w in words if len(w) > 2 and w not in LATIN_ALLOWED and w.lower() not in LATIN_ALLOWED]


# --- the lessons: one English source per lesson, its text translated paragraph by paragraph ------

WIDE = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")   # CJK characters and full-width punctuation
LESSONS = "lessons"          # the lessons' catalog (lab/locale/<lang>/LC_MESSAGES/lessons.po)
_BREAK = re.compile(r"(\n[ \t]*\n)")


def paragraphs(text: str) -> list[str]:
    """A markdown cell's paragraphs (blocks between blank lines): the lessons catalog's messages."""
    return [p for p in _BREAK.split(text) if p.strip() and not _BREAK.fullmatch(p)]


def translate_markdown(text: str, lang: str) -> str:
    """A markdown cell's text with each paragraph translated (a paragraph without a translation stays English)."""
    cat = catalog(lang, LESSONS)
    return "".join(p if not p.strip() or _BREAK.fullmatch(p) else cat.gettext(p) for p in _BREAK.split(text))


def translate_notebook(nb: dict, lang: str) -> dict:
    """A lesson notebook (nbformat JSON as a dict) in `lang`: its markdown translated, and a first line
    in its first code cell that switches the lab to that language (its widgets, plots and errors).
    The code is the English lesson's own: a change to a lesson is made once."""
    import copy
    lang = lang_of(lang)
    out = copy.deepcopy(nb)
    if lang == "en":
        return out
    first = True
    for cell in out["cells"]:
        text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "markdown":
            text = translate_markdown(text, lang)
        elif cell["cell_type"] == "code" and first:
            text = f"from lab import i18n; i18n.use({lang!r})  # {LANGS[lang]}\n" + text
            first = False
        cell["source"] = text.splitlines(keepends=True)
    out.setdefault("metadata", {})["language_info"] = out.get("metadata", {}).get("language_info", {"name": "python"})
    out["metadata"]["scaling_lab_lang"] = lang
    return out
