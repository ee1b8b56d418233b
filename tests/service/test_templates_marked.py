"""Every word a page or report shows goes through the catalogs: a template with visible text
outside ``{{ _("...") }}`` fails here (text between tags, and the ``title``, ``placeholder``,
``aria-label`` and ``alt`` attributes)."""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted(
    [
        *(ROOT / "service" / "templates").glob("*.html"),
        ROOT / "engine/reports/templates/report.html",
    ]
)

#: Text that is the same in every language: the product's name, formats, example values.
ALLOWED = {"artmatch", "PDF", "HTML", "JSON", "#", "POL-2026-0142", "/data/listings/2024-05.csv"}
ALLOWED_PATTERNS = (re.compile(r"https?://\S+"),)

#: Stands for whatever Jinja fills in.
_HOLE = "\x00"
# Blocks whose words are the API's (field names an engineer looks up), shown collapsed under
# "Technical details", and what browsers do not show.
_SKIPPED = re.compile(
    r"<(details|table) class=\"technical[^\"]*\">.*?</\1>"
    r"|<style>.*?</style>|<script[^>]*>.*?</script>|<!--.*?-->",
    re.S,
)
_ATTRIBUTE = re.compile(r"\b(title|placeholder|aria-label|alt)=\"([^\"]*)\"")
_TAG = re.compile(r"<[^>]*>")


def visible_text(source: str) -> list[str]:
    """The pieces of ``source`` a reader would see that are written in the template itself."""
    env = jinja2.Environment(extensions=["jinja2.ext.i18n"])
    parts = []
    for _line, kind, value in env.lex(source):
        parts.append(value if kind == "data" else _HOLE)
    html = re.sub(f"{_HOLE}+", _HOLE, "".join(parts))
    html = _SKIPPED.sub(" ", html)
    found = [value for _name, value in _ATTRIBUTE.findall(html)]
    found += _TAG.sub(" ", html).split(_HOLE)
    pieces = []
    for text in found:
        for piece in text.replace(_HOLE, " ").split():
            if not re.search(r"[^\W\d_]", piece) or piece.strip("().,:;·…") in ALLOWED:
                continue
            if any(p.fullmatch(piece) for p in ALLOWED_PATTERNS):
                continue
            pieces.append(piece)
    return pieces


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_templates_show_no_unmarked_text(path: Path) -> None:
    assert visible_text(path.read_text()) == [], f"{path.name}: wrap these in {{{{ _('...') }}}}"


def test_the_check_finds_unmarked_text() -> None:
    assert visible_text("<p>{{ _('Saved.') }}</p>") == []
    assert visible_text("<h1>Search log</h1>") == ["Search", "log"]
    assert visible_text('<input placeholder="user name" value="{{ v }}">') == ["user", "name"]
    assert visible_text('<img alt="{{ _(\'photo\') }}" src="{{ u }}">') == []
    assert visible_text("{% if x %}<b>{{ n }} matches</b>{% endif %}") == ["matches"]
    assert visible_text('<details class="technical"><dt>inliers</dt></details>') == []
