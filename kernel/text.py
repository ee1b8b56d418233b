"""Folding text for search across scripts: "Свети Никола", "Sveti Nikóla" and "sveti nikola"
all fold to ``sveti nikola``.

A folded form is Latin, lower-case ASCII with runs of white space made one space. There is no
single right Latin spelling of Cyrillic: Serbian writes Ч as "č", Bulgarian as "ch", Russian
romanisation as "ch" and Х as "kh". So a text folds to a few *variants*, one per
transliteration (Serbian, Bulgarian, Macedonian via `cyrtranslit`, then `anyascii` for every
other script and every diacritic: "ș", "ø", "ë", "đ", "ß"). Latin text has one variant; a
Cyrillic text up to four. Stored text keeps all its variants (`search_text`) and a query
matches when any of its variants is a substring of it, so a Serbian "Čačak" is found from
"Чачак" and a Bulgarian "Chachak" too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import cyrtranslit
from anyascii import anyascii

__all__ = ["FIELD_SEPARATOR", "fold", "fold_variants", "search_text"]

#: Between the fields of a stored `search_text`; a folded query never holds one, so a match
#: never spans two fields.
FIELD_SEPARATOR = "\n"

# cyrtranslit's language codes, in the order the variants are listed: Serbian (Gaj's Latin,
# also what Croatian and Bosnian readers type), Bulgarian (the official streamlined system),
# Macedonian (the official Latin with Ǵ, Ḱ, Dz).
_CYRILLIC_LANGUAGES = ("sr", "bg", "mk")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_SPACE = re.compile(r"\s+")


def fold(text: str) -> str:
    """One folded form of ``text``: its script and diacritics dropped by `anyascii` alone.

    Enough for Latin text; Cyrillic needs `fold_variants`.
    """
    return _SPACE.sub(" ", anyascii(text).lower()).strip()


def fold_variants(text: str) -> list[str]:
    """The distinct folded forms of ``text``, one per transliteration, the plain `fold` first."""
    variants = [fold(text)]
    if _CYRILLIC.search(text):
        for language in _CYRILLIC_LANGUAGES:
            folded = fold(cyrtranslit.to_latin(text, language))
            if folded not in variants:
                variants.append(folded)
    return [v for v in variants if v]


def search_text(fields: Iterable[str | None]) -> str:
    """What a record stores to be found by text: every variant of every non-empty field."""
    return FIELD_SEPARATOR.join(v for field in fields if field for v in fold_variants(field))
