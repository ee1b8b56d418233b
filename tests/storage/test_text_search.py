"""Text search across scripts, case and diacritics: the folding (`kernel.text`), the folded
column kept on every write and its backfill by migration 0010 (the API's ``q`` in
tests/service/test_search_words.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from kernel.schemas import ObjectCreate
from kernel.text import fold, fold_variants, search_text
from storage.catalogue import create_catalogue
from storage.catalogue.browse import CatalogueQueries
from storage.catalogue.repository import Catalogue
from storage.migrate import alembic_config

# object id -> title: one per language the users read, in its own script.
_TITLES = {
    "bg-1": "Икона Свети Никола",
    "sr-cyr": "Ђурђевдан у селу",
    "sr-lat": "Đurđevdan, ikona",
    "mk-1": "Ѓорѓи и ѕвезда",
    "ro-1": "Icoana Sfântul Ștefan",
    "ro-cedilla": "Biserica din Şimleu",
    "de-1": "Heiliger Georg, Lübeck",
    "fr-1": "Vierge à l'Enfant, église",
    "no-1": "Sølvbeger fra Ålesund",
    "sq-1": "Ikonë e Shën Mërisë",
    "hr-1": "Čaša iz Đakova",
}


@pytest.fixture
def catalogue(tmp_path: Path, migrated_catalogue: Path) -> Iterator[Catalogue]:
    shutil.copyfile(migrated_catalogue, tmp_path / "c.sqlite3")
    cat = create_catalogue(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    for oid, title in _TITLES.items():
        cat.upsert_object(ObjectCreate(object_id=oid, institution="Muzej", title=title))
    yield cat
    cat.close()


def _found(catalogue: Catalogue, q: str) -> set[str]:
    items, total = CatalogueQueries(catalogue.engine).list_objects(offset=0, limit=100, text=q)
    assert total == len(items)
    return {o.object_id for o in items}


def test_folding_drops_script_case_and_diacritics() -> None:
    assert fold("Sveti Nikóla") == fold("SVETI NIKOLA") == "sveti nikola"
    assert "sveti nikola" in fold_variants("Свети Никола")
    assert "durdevdan" in fold_variants("Ђурђевдан")
    assert fold("Đurđevdan") == "durdevdan"
    # Serbian and Bulgarian spell Ч differently in Latin: both are kept.
    assert {"cacak", "chachak"} <= set(fold_variants("Чачак"))
    assert fold("Ștefan Ştefan  ø å ë ü é") == "stefan stefan o a e u e"
    assert fold_variants("plain latin") == ["plain latin"]
    # Fields are kept apart so that a query never matches across two of them.
    assert search_text(["Ab", None, "", "Cd"]) == "ab\ncd"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Sveti Nikola", {"bg-1"}),
        ("sveti nikola", {"bg-1"}),
        ("Sveti Nikóla", {"bg-1"}),
        ("Свети Никола", {"bg-1"}),
        ("свети", {"bg-1"}),
        ("Ђурђевдан", {"sr-cyr", "sr-lat"}),
        ("Đurđevdan", {"sr-cyr", "sr-lat"}),
        ("durdevdan", {"sr-cyr", "sr-lat"}),
        ("gorgi", {"mk-1"}),  # Ѓорѓи without its accents
        ("Ǵorǵi", {"mk-1"}),
        ("Ѕвезда", {"mk-1"}),
        ("stefan", {"ro-1"}),
        ("Ştefan", {"ro-1"}),  # cedilla where the catalogue has a comma below
        ("Șimleu", {"ro-cedilla"}),  # and the other way round
        ("lubeck", {"de-1"}),
        ("LÜBECK", {"de-1"}),
        ("eglise", {"fr-1"}),
        ("Vierge a l'enfant", {"fr-1"}),
        ("solvbeger", {"no-1"}),
        ("alesund", {"no-1"}),
        ("Ikone e Shen Merise", {"sq-1"}),
        ("Чаша", {"hr-1"}),  # Cyrillic query, Croatian Latin record
        ("dakova", {"hr-1"}),
        ("nowhere", set()),
    ],
)
def test_search_finds_a_record_whatever_script_case_and_accents(
    catalogue: Catalogue, query: str, expected: set[str]
) -> None:
    assert _found(catalogue, query) == expected


def test_like_wildcards_in_a_query_are_literal(catalogue: Catalogue) -> None:
    catalogue.upsert_object(ObjectCreate(object_id="pct", institution="Muzej", title="100% silver"))
    assert _found(catalogue, "%") == {"pct"}
    assert _found(catalogue, "_") == set()
    assert _found(catalogue, "0% s") == {"pct"}


def test_a_match_never_spans_two_fields(catalogue: Catalogue) -> None:
    catalogue.upsert_object(
        ObjectCreate(object_id="two", institution="Muzej", title="Alpha", maker="Beta")
    )
    assert _found(catalogue, "alpha") == {"two"}
    assert _found(catalogue, "alpha beta") == set()


def test_edits_refold_the_record(catalogue: Catalogue) -> None:
    queries = CatalogueQueries(catalogue.engine)
    queries.update_object("de-1", {"title": "Свети Георги", "maker": None})
    assert _found(catalogue, "lubeck") == set()
    assert _found(catalogue, "sveti georgi") == {"de-1"}
    catalogue.upsert_object(ObjectCreate(object_id="de-1", institution="Muzej", maker="Тодор"))
    assert _found(catalogue, "todor") == {"de-1"}
    assert _found(catalogue, "de-1") == {"de-1"}  # the identifier is searched too


def test_migration_0010_backfills_records_stored_before_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    raw = create_catalogue(url, check_schema=False)
    with raw.engine.connect() as conn:
        command.upgrade(alembic_config(connection=conn), "0006")
        conn.execute(text("INSERT INTO institutions (name, created_at) VALUES ('M', '2024-01-01')"))
        conn.execute(
            text(
                "INSERT INTO objects (object_id, institution_id, title, status, created_at, "
                "updated_at) VALUES ('old-1', 1, 'Свети Никола', 'in_collection', "
                "'2024-01-01', '2024-01-01')"
            )
        )
        conn.commit()
        command.upgrade(alembic_config(connection=conn), "head")
        conn.commit()
    raw.close()
    cat = create_catalogue(url)
    try:
        assert _found(cat, "Sveti Nikola") == {"old-1"}
    finally:
        cat.close()
