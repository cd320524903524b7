"""Keeping the translation catalogs (`lab.i18n`) in step with the source, with Babel.

    python -m lab.catalogs update          # extract the marked strings, merge them into every catalog
    python -m lab.catalogs check           # exit 1 if a catalog lacks a string of the source or a translation
    python -m lab.catalogs missing zh      # the strings still untranslated in a catalog, as a JSON map to fill
    python -m lab.catalogs fill zh MAP.json [...]   # translations from JSON maps (msgid -> msgstr) into it
    python -m lab.catalogs cover MAP.json --paths widgets/panels.py   # does a map translate those files' strings?

`make i18n` runs `update`; the suite runs `check` (tests/test_i18n.py). Strings are marked in
`lab/` and `widgets/` with `_()` and `N_()`, and so are the lessons' code cells (what they print
and their figures' titles, `notebooks/lesson*.ipynb`: one catalog with the app, since a lesson's
code calls the same `_`); an f-string inside `_()` cannot be extracted (use
`_("{n} runs").format(n=n)`), and `check` says where one is. The lessons' markdown is a catalog
of its own ("lessons"), one message a paragraph.
"""

import argparse
import io
import json
import pathlib
import re
import sys

from lab.i18n import DOMAIN, LANGS, LESSONS, WIDE, _babel_locale, paragraphs, po_path

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCES = ("lab", "widgets")
KEYWORDS = {"_": None, "N_": None}


def extract():
    """Every marked string of the source and of the lessons' code cells, as a Babel catalog (each
    with the places it comes from; a code cell's place is `notebooks/<lesson>.ipynb:<cell index>`)."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract, extract_from_dir
    cat = Catalog(domain=DOMAIN, project="Scaling Lab", charset="utf-8")

    def add(message, where, comments=(), context=None):
        if not message or (isinstance(message, tuple) and not message[0]):
            return                              # _(name): a variable, translated where its text was marked
        cat.add(message, None, [where], auto_comments=comments, context=context)

    for folder in SOURCES:
        for filename, lineno, message, comments, context in extract_from_dir(
                ROOT / folder, method_map=[("**.py", "python")], keywords=KEYWORDS,
                comment_tags=("i18n:",), strip_comment_tags=True):
            add(message, (f"{folder}/{filename}", lineno), comments, context)
    for name, i, source in lesson_code():
        for _lineno, message, comments, context in extract("python", io.BytesIO(source.encode("utf-8")),
                                                           keywords=KEYWORDS):
            add(message, (f"notebooks/{name}", i), comments, context)
    return cat


def lesson_code():
    """(notebook file name, cell index, source) of every code cell of the lessons."""
    for path in sorted((ROOT / "notebooks").glob("lesson*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        for i, cell in enumerate(nb["cells"]):
            if cell["cell_type"] == "code":
                yield path.name, i, "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def extract_lessons():
    """Every paragraph of the lessons' markdown cells (`lab.i18n.paragraphs`), as a Babel catalog."""
    from babel.messages.catalog import Catalog
    cat = Catalog(domain=LESSONS, project="Scaling Lab", charset="utf-8")
    for path in sorted((ROOT / "notebooks").glob("lesson*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        for i, cell in enumerate(nb["cells"]):
            if cell["cell_type"] == "markdown":
                text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                for p in paragraphs(text):
                    cat.add(p, None, [(f"notebooks/{path.name}", i)])
    return cat


def read(lang: str, domain: str = DOMAIN):
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import read_po
    path = po_path(lang, domain)
    if not path.exists():
        return Catalog(locale=_babel_locale(lang), domain=domain, project="Scaling Lab", charset="utf-8")
    with path.open("rb") as f:
        return read_po(f, locale=_babel_locale(lang), domain=domain)


def write(lang: str, cat, domain: str = DOMAIN) -> None:
    from babel.messages.pofile import write_po
    path = po_path(lang, domain)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        write_po(f, cat, width=100, sort_output=False, omit_header=False, ignore_obsolete=True)


def update() -> dict:
    """Merge the source's strings into every catalog: new ones untranslated, gone ones dropped,
    kept ones keep their translation (no fuzzy guesses: a changed English text is translated anew)."""
    counts = {}
    for domain, template in ((DOMAIN, extract()), (LESSONS, extract_lessons())):
        for lang in LANGS:
            if lang == "en":
                continue
            cat = read(lang, domain)
            cat.update(template, no_fuzzy_matching=True)
            write(lang, cat, domain)
            counts[(lang, domain)] = sum(1 for m in cat if m.id)
    return counts


def _key(msg):
    return msg.id if isinstance(msg.id, str) else msg.id[0]


def untranslated(lang: str, domain: str = DOMAIN) -> list:
    """The catalog's messages with no translation (or only a fuzzy one)."""
    return [m for m in read(lang, domain) if m.id and (m.fuzzy or not (m.string if isinstance(m.string, str)
                                                                 else all(m.string)))]


def problems(lang: str, domain: str = DOMAIN) -> list[str]:
    """What keeps `lang`'s catalog from matching the source, in words (empty when it does)."""
    template = extract() if domain == DOMAIN else extract_lessons()
    cat, out = read(lang, domain), (hidden_in_fstrings() + unmarked_in_lessons() if domain == DOMAIN else [])
    have = {_key(m) for m in cat if m.id}
    for m in template:
        if m.id and _key(m) not in have:
            where = ", ".join(f"{f}:{n}" for f, n in m.locations[:2])
            out.append(f"not in the {lang} {domain} catalog (run `make i18n`): {_key(m)!r} ({where})")
    want = {_key(m) for m in template if m.id}
    out += [f"in the {lang} {domain} catalog but no longer in the source (run `make i18n`): {k!r}"
            for k in sorted(have - want)]
    for m in untranslated(lang, domain):
        where = ", ".join(f"{f}:{n}" for f, n in m.locations[:2])
        out.append(f"untranslated in {po_path(lang, domain).relative_to(ROOT)}: {_key(m)!r} ({where})")
    for m in cat:
        if domain == LESSONS and isinstance(m.string, str) and _wrapped(m.string):
            out.append(f"a line break between Chinese characters (shown as a space) in the {lang} translation of "
                       f"{_key(m)[:60]!r}: join the lines")
        if m.id and isinstance(m.id, str) and isinstance(m.string, str) and m.string:
            if domain == DOMAIN and _fields(m.id) != _fields(m.string):
                out.append(f"the {lang} translation of {m.id!r} has fields {sorted(_fields(m.string))}, "
                           f"the English {sorted(_fields(m.id))}")
            elif domain == DOMAIN and _specs(m.id) != _specs(m.string):
                out.append(f"the {lang} translation of {m.id!r} formats its fields as {sorted(_specs(m.string))}, "
                           f"the English as {sorted(_specs(m.id))}: copy each {{field:spec}} as the English has it")
    return out


def hidden_in_fstrings() -> list[str]:
    """`_("...")` written inside an f-string: Babel cannot extract it (on Python 3.11 an f-string is
    one token), so its text would silently stay English. Where each one is, in words."""
    import tokenize
    call = re.compile(r"\b_\(\s*[\"']")
    sources = [(str(path.relative_to(ROOT)), path.read_text(encoding="utf-8"))
               for folder in SOURCES for path in sorted((ROOT / folder).rglob("*.py"))]
    sources += [(f"notebooks/{name}, cell {i}, line", text) for name, i, text in lesson_code()]
    out = []
    for where, text in sources:
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
        except (tokenize.TokenError, SyntaxError):
            continue
        for tok in tokens:
            prefix = tok.string[:3].lower()
            if tok.type == tokenize.STRING and "f" in prefix.split("'")[0].split('"')[0] and call.search(tok.string):
                out.append(f"{where}:{tok.start[0]}: _(\"...\") inside an f-string cannot be "
                           "extracted; move it out (a variable, or + concatenation)")
    return out


KEEP = "# i18n: keep"     # on a lesson's code line: its English is data (a prompt for a model trained on English)


def unmarked_prose(source: str) -> list[tuple[int, str]]:
    """(line, text) of each string in `source` (a lesson's code cell) that reads as English prose
    (a space and a word outside `lab.i18n.LATIN_ALLOWED`) and is not inside `_()` or `N_()`, nor on
    a line marked `# i18n: keep`: a text the Chinese lesson would show in English."""
    import ast
    from lab.i18n import latin_words
    tree, lines = ast.parse(source), source.splitlines()
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in KEYWORDS:
            skip.update(id(sub) for sub in ast.walk(node))
    out = []
    for node in ast.walk(tree):             # breadth first: an f-string before its parts
        if id(node) in skip:
            continue
        if isinstance(node, ast.JoinedStr):
            skip.update(id(v) for v in node.values)
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        else:
            continue
        if " " in text.strip() and latin_words(text) and not any(
                KEEP in lines[i - 1] for i in range(node.lineno, node.end_lineno + 1)):
            out.append((node.lineno, text))
    return out


def unmarked_in_lessons() -> list[str]:
    """The lessons' code cells' English prose outside `_()` (`unmarked_prose`), in words."""
    return [f"notebooks/{name}, cell {i}, line {line}: {text[:60]!r} is shown in English in every language; "
            f"wrap it in _() (and `make i18n`), or mark the line {KEEP!r} when the English is data"
            for name, i, source in lesson_code() for line, text in unmarked_prose(source)]


BLOCK = re.compile(r"\s*([-*+]\s|\d+[.)]\s|#|\||>|```|\$\$)")


def _wrapped(text: str) -> bool:
    """A line of running Chinese text broken in two (markdown would show a space there): not after
    a heading or a table row, nor before a list item or a block."""
    lines = text.split("\n")
    return any(a.strip() and b.strip() and WIDE.match(a.rstrip()[-1]) and WIDE.match(b.lstrip()[0])
               and not a.lstrip().startswith(("#", "|", "```", "$$")) and not BLOCK.match(b)
               for a, b in zip(lines, lines[1:]))


def _fields(text: str) -> set:
    return {name for name, _spec, _conv in _specs(text)}


def _specs(text: str) -> set:
    """Each field with its format spec and conversion ("{p.N:>9,.0f}", "{x!r}"): a translation that
    changes one would print differently, or fail, where the English does not."""
    import string
    try:
        return {(name, spec, conv) for _lit, name, spec, conv in string.Formatter().parse(text) if name is not None}
    except ValueError:
        return {("<not a format string>", "", None)}


def fill(lang: str, maps: list[dict], domain: str = DOMAIN) -> int:
    cat, n = read(lang, domain), 0
    merged = {k: v for m in maps for k, v in m.items()}
    for m in cat:
        if m.id and isinstance(m.id, str) and merged.get(m.id):
            m.string, n = merged[m.id], n + 1
            m.flags.discard("fuzzy")
    write(lang, cat, domain)
    return n


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.catalogs", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("update")
    sub.add_parser("check")
    m = sub.add_parser("missing")
    m.add_argument("lang")
    m.add_argument("--domain", default=DOMAIN, choices=(DOMAIN, LESSONS))
    m.add_argument("--paths", nargs="*", default=None, help="only strings from these files (lab/... or widgets/...)")
    c = sub.add_parser("cover")
    c.add_argument("map")
    c.add_argument("--paths", nargs="+", required=True)
    f = sub.add_parser("fill")
    f.add_argument("lang")
    f.add_argument("maps", nargs="+")
    f.add_argument("--domain", default=DOMAIN, choices=(DOMAIN, LESSONS))
    args = p.parse_args(argv)
    if args.cmd == "update":
        for (lang, domain), n in update().items():
            print(f"{po_path(lang, domain).relative_to(ROOT)}: {n} strings, "
                  f"{len(untranslated(lang, domain))} untranslated")
        return 0
    if args.cmd == "check":
        bad = [line for lang in LANGS if lang != "en" for domain in (DOMAIN, LESSONS) for line in problems(lang, domain)]
        print("\n".join(bad) if bad else "catalogs match the source; every string translated")
        return 1 if bad else 0
    if args.cmd == "missing":
        msgs = untranslated(args.lang, args.domain)
        if args.paths is not None:
            msgs = [m for m in msgs if any(f in args.paths for f, _n in m.locations)]
        json.dump({_key(m): "" for m in msgs}, sys.stdout, ensure_ascii=False, indent=1)
        print()
        return 0
    if args.cmd == "cover":
        got = json.loads(pathlib.Path(args.map).read_text(encoding="utf-8"))
        bad = []
        for m in extract():
            if m.id and any(f in args.paths for f, _n in m.locations):
                key = _key(m)
                if not got.get(key):
                    bad.append(f"no translation for {key!r} ({', '.join(f'{f}:{n}' for f, n in m.locations[:2])})")
                elif _fields(key) != _fields(got[key]):
                    bad.append(f"fields differ: {key!r} -> {got[key]!r}")
        print("\n".join(bad) if bad else f"every string of {', '.join(args.paths)} has a translation in {args.map}")
        return 1 if bad else 0
    n = fill(args.lang, [json.loads(pathlib.Path(path).read_text(encoding="utf-8")) for path in args.maps],
             args.domain)
    print(f"{n} translations filled into {po_path(args.lang, args.domain).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
