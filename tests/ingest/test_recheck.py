"""Retroactive re-checks from stored listing features: a theft reported after a listing was
checked raises exactly one alert, never twice; a recovered object raises none; listing
photos are never read again; sightings link one object's listings across venues."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.services import Services
from ingest.catalogue_csv import iter_items, read_catalogue_csv
from ingest.listings import check_listings
from ingest.photos import ingest_photos
from ingest.recheck import recheck_object
from kernel.enums import ObjectStatus
from kernel.schemas import StatusChange
from storage.catalogue.alerts import AlertStore
from tests.utils.catalogue import write_catalogue
from tests.utils.images import jpeg_bytes, photographed, textured_object


def _listings(folder: Path, rows: list[tuple[str, object, str]], name: str = "m.jsonl") -> Path:
    """A manifest of (listing_id, image, venue) rows with their photos written beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for listing_id, img, venue in rows:
        photo = f"{listing_id}.jpg"
        (folder / photo).write_bytes(jpeg_bytes(img))  # type: ignore[arg-type]
        lines.append(
            json.dumps(
                {
                    "listing_id": listing_id,
                    "image": photo,
                    "venue": venue,
                    "price": "1200 EUR",
                    "seller": "s1",
                    "date": "2026-03-01",
                }
            )
        )
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def museum(services: Services, tmp_path: Path) -> Services:
    ingest_photos(services, iter_items(read_catalogue_csv(write_catalogue(tmp_path / "museum"))))
    return services


def _stolen(services: Services, object_id: str) -> None:
    services.catalogue.set_status(object_id, StatusChange(status=ObjectStatus.STOLEN))


def test_a_theft_reported_after_the_check_raises_exactly_one_alert(
    museum: Services, tmp_path: Path
) -> None:
    manifest = _listings(
        tmp_path / "venue",
        [
            ("L1", photographed(textured_object(1), seed=7), "house-a"),
            ("L2", textured_object(40), "house-a"),
            ("L3", textured_object(41), "house-a"),
        ],
    )
    run = check_listings(museum, manifest)
    # Nothing was lost when the listings were checked: no hit, no alert.
    assert (run.checked, run.hits) == (3, 0)
    store = AlertStore(museum.catalogue.engine)
    assert store.alerts(everything=True) == []
    # The photos are gone: a re-check must work from the stored features alone.
    shutil.rmtree(tmp_path / "venue")

    _stolen(museum, "obj-1")
    result = recheck_object(museum, "obj-1", store=store)
    assert result.listings == 3
    assert [h.listing.listing_id for h in result.hits] == ["L1"]
    alerts = store.alerts(everything=True)
    assert [(a.object_id, a.listing_id, a.origin) for a in alerts] == [("obj-1", "L1", "recheck")]
    assert alerts[0].confidence >= 0.9 and alerts[0].price == "1200 EUR"

    # Reported again (missing, then stolen): the listing is found again, no second alert.
    again = recheck_object(museum, "obj-1", store=store)
    assert len(again.hits) == 1 and again.new_alerts == []
    assert len(store.alerts(everything=True)) == 1

    # An object nobody has seen raises nothing.
    _stolen(museum, "obj-2")
    assert recheck_object(museum, "obj-2", store=store).hits == []


def test_a_recovered_object_raises_none_and_closes_its_alerts(
    museum: Services, tmp_path: Path
) -> None:
    manifest = _listings(tmp_path / "venue", [("L1", photographed(textured_object(1), 3), "v")])
    check_listings(museum, manifest)
    store = AlertStore(museum.catalogue.engine)
    museum.catalogue.set_status("obj-1", StatusChange(status=ObjectStatus.RECOVERED))
    # Seen (kept in its history) but not looked for: no alert.
    assert recheck_object(museum, "obj-1", store=store).new_alerts == []
    assert store.alerts(everything=True) == []
    assert [s.listing_id for s in store.sightings_of("obj-1")] == ["L1"]

    _stolen(museum, "obj-1")
    assert len(recheck_object(museum, "obj-1", store=store).new_alerts) == 1
    assert store.close_alerts_of("obj-1", reason="recovered") == 1
    assert store.alerts(everything=True, open_only=True) == []
    closed = store.alerts(everything=True)
    assert closed[0].closed_reason == "recovered"


def test_a_new_check_of_a_lost_object_is_a_sighting_and_an_alert(
    museum: Services, tmp_path: Path
) -> None:
    _stolen(museum, "obj-1")
    store = AlertStore(museum.catalogue.engine)
    first = _listings(tmp_path / "a", [("A1", photographed(textured_object(1), 1), "house-a")])
    second = _listings(tmp_path / "b", [("B9", photographed(textured_object(1), 2), "house-b")])
    assert check_listings(museum, first).hits == 1
    assert check_listings(museum, second).hits == 1
    seen = store.sightings_of("obj-1")
    # One object, two venues: its cross-venue history.
    assert [(s.source, s.listing_id, s.origin) for s in seen] == [
        ("house-a", "A1", "check"),
        ("house-b", "B9", "check"),
    ]
    assert len(store.alerts(everything=True)) == 2
    # The re-check finds the same two listings and adds nothing.
    result = recheck_object(museum, "obj-1", store=store)
    assert len(result.hits) == 2 and result.new_alerts == []


def test_a_listing_check_computes_its_features_once(
    museum: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The search already extracted the keypoints and embedded the photo: keeping them for
    # re-checks reuses those rather than computing them a second time.
    import ingest.recheck
    from engine.search import search
    from models.images import decode_image

    def again(*_: object) -> None:
        raise AssertionError("the listing's keypoints were extracted a second time")

    monkeypatch.setattr(ingest.recheck, "extract_query_features", again)
    calls: list[int] = []
    embed = museum.embedder.embed
    monkeypatch.setattr(museum.embedder, "embed", lambda images: calls.append(1) or embed(images))
    photo = textured_object(40)
    search(museum, decode_image(jpeg_bytes(photo), source="x"))
    per_search = len(calls)
    calls.clear()
    run = check_listings(museum, _listings(tmp_path / "venue", [("L1", photo, "house-a")]))
    assert run.checked == 1 and not run.errors
    assert len(calls) == per_search
    assert AlertStore(museum.catalogue.engine).count_checked()[0] == 1
