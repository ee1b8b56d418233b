"""The users' languages: gettext catalogs (`kernel/locale/<locale>/LC_MESSAGES/messages.po`),
choosing a language, and formatting numbers, percentages and dates for it.

The catalogs are compiled from their ``.po`` files in memory when first used (Babel's
``pofile``/``mofile``), so a fresh clone needs no build step and no ``.mo`` file can go stale
beside its ``.po``. Pages (service/templates) and signed reports (engine/reports) both install
`install_jinja` on their Jinja environment; the translations of one rendering travel in its
context (``_translations``), so one environment serves every language at once.

Updating the catalogs after marking new strings (README, "Languages")::

    pybabel extract -F babel.cfg -o kernel/locale/messages.pot .
    pybabel update -i kernel/locale/messages.pot -d kernel/locale
"""

from __future__ import annotations

import datetime as dt
import gettext as gettext_module
import io
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from babel import Locale, UnknownLocaleError
from babel.core import negotiate_locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent

__all__ = [
    "DEFAULT_LOCALE",
    "FIELD_LABELS",
    "N_",
    "LOCALES",
    "LOCALE_DIR",
    "Translator",
    "install_jinja",
    "locale_names",
    "negotiate",
    "normalise",
    "translator",
]

LOCALE_DIR = Path(__file__).with_name("locale")
DEFAULT_LOCALE = "en"
# The pages say "UTC" beside their times: times are shown in UTC, never the server's zone.
_UTC = dt.UTC

#: Every language the pages and reports speak, as Babel's locale identifiers: Serbian in
#: Cyrillic is ``sr`` (CLDR's default script for Serbian), in Latin script ``sr_Latn``.
LOCALES: tuple[str, ...] = (
    "en",
    "bg",
    "ro",
    "sr",
    "sr_Latn",
    "hr",
    "sq",
    "mk",
    "nb",
    "it",
    "de",
    "fr",
)

# What browsers send that Babel would not match by itself: "no" (Norwegian) is written in
# Bokmål by most; "sr-Latn-RS" and "sr-RS" are Serbian in their scripts.
_ALIASES = {
    "no": "nb",
    "nn": "nb",
    "sr_latn": "sr_Latn",
    "sr_cyrl": "sr",
    "sh": "sr_Latn",
}


def N_(message: str) -> str:  # noqa: N802 - gettext's conventional name, found by extraction
    """Mark ``message`` for the catalogs without translating it here: it is translated where
    shown (``{{ _(error) }}`` in a page)."""
    return message


#: Field labels as the Object ID standard names them (`kernel.schemas.OBJECT_ID_FIELDS`), and
#: the other fields a page or report shows of an object.
FIELD_LABELS = {
    "object_type": N_("Type of object"),
    "materials_techniques": N_("Materials and techniques"),
    "measurements": N_("Measurements"),
    "inscriptions_markings": N_("Inscriptions and markings"),
    "distinguishing_features": N_("Distinguishing features"),
    "title": N_("Title"),
    "subject": N_("Subject"),
    "date_period": N_("Date or period"),
    "maker": N_("Maker"),
    "description": N_("Description"),
    "inventory_number": N_("Inventory number"),
    "object_id": N_("Object number"),
    "institution": N_("Institution"),
    "status": N_("Status"),
    "loss_date": N_("Date of loss"),
    "loss_reference": N_("Loss reference"),
}


def normalise(tag: str | None) -> str | None:
    """The locale of `LOCALES` that ``tag`` ("de-AT", "sr-Latn", "no", "sr_Latn") names, or
    None."""
    if not tag:
        return None
    parts = tag.strip().replace("-", "_").split("_")
    language = parts[0].lower()
    if not language.isalpha():
        return None
    if language == "sr" and any(p.lower() == "latn" for p in parts[1:]):
        return "sr_Latn"
    if language == "sr":
        return "sr"
    language = _ALIASES.get(language, language)
    return language if language in LOCALES else None


def negotiate(accept_language: str | None) -> str | None:
    """The best of `LOCALES` for a browser's ``Accept-Language`` header, or None."""
    if not accept_language:
        return None
    weighted: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if quality > 0 and tag.strip() and tag.strip() != "*":
            weighted.append((-quality, position, tag.strip()))
    for _, _, tag in sorted(weighted):
        found = normalise(tag)
        if found:
            return found
    # Babel's own matching for whatever the aliases above do not cover.
    tags = [t.replace("-", "_") for _, _, t in sorted(weighted)]
    return negotiate_locale(tags, list(LOCALES), sep="_")


def locale_names() -> list[tuple[str, str]]:
    """(locale, its name in itself) for the language picker."""
    return [(code, Locale.parse(code).get_display_name(code) or code) for code in LOCALES]


class Translator:
    """One language's messages and formats."""

    def __init__(self, locale: str, translations: gettext_module.NullTranslations) -> None:
        self.locale = locale
        self.translations = translations
        self.babel = Locale.parse(locale)

    @property
    def html_lang(self) -> str:
        return self.locale.replace("_", "-")

    def gettext(self, message: str, **variables: Any) -> str:
        text = self.translations.gettext(message)
        return text % variables if variables else text

    def ngettext(self, singular: str, plural: str, n: int, **variables: Any) -> str:
        text = self.translations.ngettext(singular, plural, n)
        return text % ({"num": n} | variables)

    def percent(self, value: float | None) -> str:
        """A confidence as a whole percentage; above 99.5 % it reads ">99 %" rather than a
        "100 %" no comparison of photos can honestly claim."""
        if value is None:
            return ""
        if value >= 0.995:
            return ">" + format_percent(0.99, locale=self.babel)
        return format_percent(max(value, 0.0), locale=self.babel)

    def number(self, value: float | int | None, *, digits: int = 0) -> str:
        if value is None:
            return ""
        fmt = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, format=fmt, locale=self.babel)

    def date(self, value: dt.date | dt.datetime | None) -> str:
        if value is None:
            return ""
        if isinstance(value, dt.datetime):
            return format_datetime(value, "short", tzinfo=_UTC, locale=self.babel)
        return format_date(value, "medium", locale=self.babel)


@lru_cache(maxsize=len(LOCALES))
def translator(locale: str | None) -> Translator:
    """The `Translator` of ``locale`` (English for None or an unknown one), compiled from its
    ``.po`` file once per process."""
    code = normalise(locale) or DEFAULT_LOCALE
    po_path = LOCALE_DIR / code / "LC_MESSAGES" / "messages.po"
    if not po_path.exists():
        return Translator(code, gettext_module.NullTranslations())
    try:
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=code)
    except UnknownLocaleError:
        return Translator(DEFAULT_LOCALE, gettext_module.NullTranslations())
    buffer = io.BytesIO()
    # Empty msgstrs are left out, so gettext falls back to the English msgid.
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translator(code, gettext_module.GNUTranslations(buffer))


# Jinja's newstyle wrappers escape and fill in the placeholders; these only look up the
# rendering's language (Context.call hands them the context).
@jinja2.pass_context
def _gettext(ctx: jinja2.runtime.Context, message: str) -> str:
    t: Translator = ctx.get("_translations") or translator(None)
    return t.translations.gettext(message)


@jinja2.pass_context
def _ngettext(ctx: jinja2.runtime.Context, singular: str, plural: str, n: int) -> str:
    t: Translator = ctx.get("_translations") or translator(None)
    return t.translations.ngettext(singular, plural, n)


def install_jinja(env: jinja2.Environment) -> None:
    """Give ``env`` ``_``/``gettext``/``ngettext`` (Jinja's i18n extension, new style) and the
    filters ``percent``, ``number``, ``when`` and ``tr`` (a message made in code), all in the
    language of the rendering's ``_translations`` (a `Translator`; English when absent)."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=_gettext, ngettext=_ngettext, newstyle=True
    )

    @jinja2.pass_context
    def percent(ctx: jinja2.runtime.Context, value: float | None) -> str:
        return (ctx.get("_translations") or translator(None)).percent(value)

    @jinja2.pass_context
    def number(ctx: jinja2.runtime.Context, value: float | None, digits: int = 0) -> str:
        return (ctx.get("_translations") or translator(None)).number(value, digits=digits)

    @jinja2.pass_context
    def when(ctx: jinja2.runtime.Context, value: dt.date | dt.datetime | None) -> str:
        return (ctx.get("_translations") or translator(None)).date(value)

    @jinja2.pass_context
    def tr(ctx: jinja2.runtime.Context, message: str | None) -> str:
        # A message made in code (an error, marked there with N_): translated when the
        # catalogs know it, shown as it is otherwise; never used as a format string.
        if not message:
            return ""
        return (ctx.get("_translations") or translator(None)).translations.gettext(message)

    env.filters.update(percent=percent, number=number, when=when, tr=tr)
