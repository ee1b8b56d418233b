"""Near-duplicates at ingest: one painting under two ids is reported, unrelated objects not."""

from __future__ import annotations

from PIL import Image

from engine.services import Services
from ingest.photos import IngestOutcome, Outcome, PhotoItem, ingest_photos
from kernel.schemas import ObjectCreate
from tests.utils.images import jpeg_bytes, photographed, textured_object


def _item(object_id: str, img: Image.Image, name: str) -> PhotoItem:
    data = jpeg_bytes(img)
    return PhotoItem(record=ObjectCreate(object_id=object_id), source=name, load=lambda: data)


def _another_session(painting: Image.Image, seed: int) -> Image.Image:
    """Another photo of the painting, cropped to it as catalogue photos are."""
    photo = photographed(painting, seed=seed)
    w, h = photo.size
    return photo.crop((w // 12, h // 12, w * 11 // 12, h * 11 // 12))


def _by_source(outcomes: list[IngestOutcome]) -> dict[str, IngestOutcome]:
    assert all(o.outcome is Outcome.ADDED for o in outcomes)
    return {o.source: o for o in outcomes}


def test_second_object_with_the_same_painting_is_reported(services: Services) -> None:
    painting = textured_object(7)
    first = ingest_photos(services, [_item("A", painting, "a.jpg")])
    assert first[0].possible_duplicates == ()
    outcomes = ingest_photos(
        services,
        [
            _item("B", _another_session(painting, seed=3), "b.jpg"),
            _item("C", textured_object(8), "c.jpg"),
        ],
    )
    got = _by_source(outcomes)
    [dup] = got["b.jpg"].possible_duplicates
    assert dup.object_id == "A"
    assert dup.photo_id == first[0].photo_id
    assert dup.inliers >= 12
    assert "photo b.jpg of object B verifies against object A's photo" in got["b.jpg"].message
    assert "may be one object" in got["b.jpg"].message
    # Stored all the same: a warning, not an error.
    assert len(services.catalogue.photos_of("B")) == 1
    assert got["c.jpg"].possible_duplicates == ()
    assert got["c.jpg"].message == ""


def test_pair_within_one_batch_is_reported_once_on_the_later_photo(services: Services) -> None:
    painting = textured_object(11)
    outcomes = ingest_photos(
        services,
        [
            _item("A", painting, "a.jpg"),
            _item("A", _another_session(painting, seed=1), "a2.jpg"),  # same object: fine
            _item("B", _another_session(painting, seed=2), "b.jpg"),
        ],
    )
    got = _by_source(outcomes)
    assert got["a.jpg"].possible_duplicates == ()
    assert got["a2.jpg"].possible_duplicates == ()
    assert {d.object_id for d in got["b.jpg"].possible_duplicates} == {"A"}


def test_unrelated_objects_are_not_reported(services: Services) -> None:
    outcomes = ingest_photos(
        services,
        [_item(f"obj-{i}", textured_object(i), f"{i}.jpg") for i in range(6)]
        + [
            _item(f"obj-{i}", photographed(textured_object(i), seed=i), f"{i}b.jpg")
            for i in range(6)
        ],
    )
    assert [o.possible_duplicates for o in outcomes] == [()] * 12
