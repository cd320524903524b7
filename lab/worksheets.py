"""A printable worksheet per lesson: its title, goals and questions, without the teacher notes.

    html = worksheet(lesson_nb, "zh")      # a lesson notebook (nbformat JSON as a dict)

Made from the lesson itself (its first cell and its "Questions" section, translated as the
lesson is: `lab.i18n.translate_notebook`), so a worksheet never says other than its lesson.
`scaling-lab lessons FOLDER [--lang zh]` writes them to FOLDER/worksheets/. One HTML page each,
laid out for A4 or Letter paper, with room under each question for the answer.
"""

import html
import re

from lab.i18n import WIDE, _, lang_of, paragraphs, translate_notebook

HTML_LANG = {"zh": "zh-Hans"}        # so that browsers draw Simplified glyphs

STYLE = """
body { font-family: "Noto Serif", "Source Han Serif SC", "Songti SC", serif; max-width: 46em; margin: 2em auto;
       line-height: 1.5; color: #111; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
.who { margin: 0.5em 0 1.5em; }
.who span { display: inline-block; min-width: 14em; border-bottom: 1px solid #555; margin-right: 2em; }
ol.questions > li { margin-bottom: 7em; break-inside: avoid; }
code, .math { font-family: monospace; font-size: 0.95em; }
footer { color: #666; font-size: 0.85em; margin-top: 2em; }
@media print { body { margin: 0 1.5cm; } footer { position: fixed; bottom: 0; } }
"""


def _text(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def join_lines(a: str, b: str) -> str:
    """Two lines of one paragraph: a space between them, but none between Chinese characters."""
    return a + b if (a and WIDE.match(a[-1])) or (b and WIDE.match(b[0])) else f"{a} {b}"


def _html(md, text: str) -> str:
    """Markdown to HTML with $...$ math kept as written (markdown would eat its backslashes)."""
    spans: list[str] = []

    def keep(m):
        spans.append(m.group(0))
        return f"\x00{len(spans) - 1}\x00"

    out = md(re.sub(r"\$\$.+?\$\$|\$[^$\n]+\$", keep, text))
    return re.sub("\x00(\\d+)\x00", lambda m: f"<span class='math'>{html.escape(spans[int(m.group(1))])}</span>", out)


def questions_of(text: str) -> tuple[str, list[str]]:
    """A "Questions" section (its heading line, then a numbered list, up to the next heading) as
    (heading, questions)."""
    lines = text.splitlines()
    heading, items = lines[0].lstrip("#").strip(), []
    for line in lines[1:]:
        if line.startswith("#"):
            break
        m = re.match(r"\s*\d+[.)]\s+(.*)", line)
        if m:
            items.append(m.group(1))
        elif items and line.strip():
            items[-1] = join_lines(items[-1], line.strip())
    return heading, items


def worksheet(nb: dict, lang: str = "en") -> str:
    """The worksheet of lesson notebook `nb` in `lang`, as one HTML page."""
    import mistune
    lang = lang_of(lang)
    shown = translate_notebook(nb, lang)
    pairs = [(_text(a), _text(b)) for a, b in zip(nb["cells"], shown["cells"]) if a["cell_type"] == "markdown"]
    if not pairs:
        raise ValueError("this notebook has no text: not a lesson")
    first = paragraphs(pairs[0][1])
    title = first[0].lstrip("#").strip()
    goals = first[1] if len(first) > 1 else ""
    found = [shown_text for en, shown_text in pairs if en.startswith("## Questions")]
    if not found:
        raise ValueError(f"lesson {title!r} has no '## Questions' section to make a worksheet of")
    heading, items = questions_of(found[0])
    md = mistune.create_markdown(escape=True)
    questions = "".join(f"<li>{_html(md, q).strip().removeprefix('<p>').removesuffix('</p>')}</li>" for q in items)
    name, date = _("Name:"), _("Date:")
    footer = _("Scaling Lab · worksheet for {lesson}; the answers are in the lesson's teacher notes").format(
        lesson=html.escape(title))
    return (f"<!doctype html>\n<html lang='{HTML_LANG.get(lang, lang)}'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n"
            f"<div class='who'>{html.escape(name)} <span>&nbsp;</span> {html.escape(date)} <span>&nbsp;</span></div>\n"
            f"{_html(md, goals)}\n<h2>{html.escape(heading)}</h2>\n<ol class='questions'>{questions}</ol>\n"
            f"<footer>{footer}</footer>\n</body></html>\n")


__all__ = ["questions_of", "worksheet"]
