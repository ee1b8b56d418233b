"""Photos of any shape are stored and found; one photo that fails sinks only itself; a
duplicate of another institution's photo does not name that institution's object."""

from __future__ import annotations

import io

import numpy as np
import pytest

from engine.search import search
from ingest.photos import Outcome, PhotoItem, ingest_photos
from kernel.schemas import ObjectCreate
from models.embedders import FakeEmbedder
from models.images import decode_image
from tests.utils.images import png_bytes, textured_object

SHAPES = [(2000, 190), (190, 2000), (4000, 100), (50, 3000), (1, 1), (3, 3000), (320, 400)]


def _item(n: int, size: tuple[int, int], *, institution: str = "Museum A") -> PhotoItem:
    data = png_bytes(textured_object(n, size=(600, 600)).resize(size))
    record = ObjectCreate(object_id=f"obj-{n}", institution=institution)
    return PhotoItem(record=record, source=f"{size[0]}x{size[1]}.png", load=lambda: data)


@pytest.mark.parametrize("verify", [True, False])
def test_every_shape_is_stored_and_found(services, verify: bool) -> None:
    services.settings.match.verify = verify
    items = [_item(n, size) for n, size in enumerate(SHAPES)]
    outcomes = ingest_photos(services, items)
    assert [(o.source, o.outcome) for o in outcomes] == [
        (i.source, Outcome.ADDED) for i in items
    ], [o.message for o in outcomes]
    for n, item in enumerate(items):
        result = search(services, decode_image(item.load()), top_k=3)
        assert result.hits[0].object_id == f"obj-{n}"
    [frieze] = [o for o in outcomes if o.source == "4000x100.png"]
    assert frieze.photo_id is not None


class _Flaky(FakeEmbedder):
    """Fails on one picture size, as a model can on an input nobody foresaw."""

    def embed(self, images):  # type: ignore[no-untyped-def]
        if any(img.size == (2000, 190) for img in images):
            raise RuntimeError("shape mismatch in the network")
        return super().embed(images)


def test_one_photo_that_fails_does_not_sink_its_batch(services) -> None:
    services.embedder = _Flaky()
    items = [_item(n, size) for n, size in enumerate(SHAPES)]
    outcomes = {o.source: o for o in ingest_photos(services, items)}
    bad = outcomes.pop("2000x190.png")
    assert bad.outcome is Outcome.ERROR
    assert bad.message == (
        "2000x190.png: could not be embedded (an internal error; the other photos are not affected)"
    )
    assert all(o.outcome is Outcome.ADDED for o in outcomes.values())
    assert services.index.size == len(SHAPES) - 1


def test_a_duplicate_names_only_an_object_of_the_same_institution(services) -> None:
    [first] = ingest_photos(services, [_item(1, (300, 200), institution="Museum B")])
    assert first.outcome is Outcome.ADDED
    [theirs] = ingest_photos(services, [_item(1, (300, 200), institution="Museum A")])
    assert theirs.outcome is Outcome.DUPLICATE and theirs.object_id is None
    assert "obj-1" not in theirs.message
    assert "already stored in the catalogue of another institution" in theirs.message
    [own] = ingest_photos(services, [_item(1, (300, 200), institution="Museum B")])
    assert own.outcome is Outcome.DUPLICATE and "for object obj-1" in own.message


def test_a_photo_over_the_byte_budget_is_refused_and_the_others_kept(services) -> None:
    from PIL import Image

    services.settings.max_decode_bytes = 2 * 2**20
    buf = io.BytesIO()
    Image.fromarray(np.zeros((900, 1000), np.int32), "I").save(buf, "TIFF")
    data = buf.getvalue()
    bomb = PhotoItem(
        record=ObjectCreate(object_id="obj-9", institution="Museum A"),
        source="deep.tif",
        load=lambda: data,
    )
    outcomes = ingest_photos(services, [_item(1, (300, 200)), bomb, _item(2, (200, 300))])
    assert [o.outcome for o in outcomes] == [Outcome.ERROR, Outcome.ADDED, Outcome.ADDED]
    assert "too large to decode" in outcomes[0].message
