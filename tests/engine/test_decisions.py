"""Issue 9's decisions through the real pipeline (real CNN, the descriptor index, geometry):
unrelated photos are never a match whatever the catalogue's size, every object of a lot is
found with its box, copies and awkward views still verify."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.search import search
from engine.services import Services, build_services
from ingest.catalogue_csv import iter_items, read_catalogue_csv
from ingest.photos import ingest_photos
from kernel.enums import Decision
from kernel.settings import Settings
from models.images import decode_image
from tests.utils.catalogue import write_catalogue
from tests.utils.images import jpeg_bytes, photographed, textured_object, tilted

pytestmark = pytest.mark.slow


def _services(settings: Settings, embedder, root: Path, n_objects: int) -> Services:  # type: ignore[no-untyped-def]
    svc = build_services(settings, embedder=embedder)
    csv_path = write_catalogue(root, n_objects=n_objects)
    ingest_photos(svc, iter_items(read_catalogue_csv(csv_path)))
    return svc


@pytest.fixture(scope="module")
def catalogues(
    tmp_path_factory: pytest.TempPathFactory, real_embedder
) -> Iterator[dict[int, Services]]:  # type: ignore[no-untyped-def]
    built = {}
    for n in (1, 10, 100):
        root = tmp_path_factory.mktemp(f"cat{n}")
        built[n] = _services(Settings(home=root / "home"), real_embedder, root / "c", n)
    yield built
    for svc in built.values():
        svc.close()


def _query(img: Image.Image):  # type: ignore[no-untyped-def]
    return decode_image(jpeg_bytes(img, quality=88))


def _wallpaper(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A bare patterned background: repeated motifs, plenty of keypoints, no object."""
    rng = np.random.default_rng(seed)
    tile = (rng.random((24, 24, 3)) * 255).astype(np.uint8)
    reps = (size[1] // 24 + 1, size[0] // 24 + 1, 1)
    return Image.fromarray(np.tile(tile, reps)[: size[1], : size[0]])


def _unrelated() -> dict[str, Image.Image]:
    background = photographed(textured_object(0), seed=3)  # a catalogue object on a wall
    w, h = background.size
    return {
        "other painting": photographed(textured_object(501), seed=1),
        "another painting": textured_object(502),
        "tight crop of a painting": textured_object(503).crop((60, 80, 260, 300)),
        "bare wall": Image.new("RGB", (640, 480), (200, 195, 185)),
        "wallpaper": _wallpaper(7),
        "background of a catalogue photo": background.crop((0, 0, w, int(h * 0.08))).resize(
            (640, 60)
        ),
    }


@pytest.mark.parametrize("n", [1, 10, 100])
@pytest.mark.parametrize("what", list(_unrelated()))
def test_unrelated_photos_are_never_a_match(catalogues, n: int, what: str) -> None:  # type: ignore[no-untyped-def]
    result = search(catalogues[n], _query(_unrelated()[what]), top_k=5)
    assert result.matches == [], [(h.object_id, h.inliers, h.confidence) for h in result.hits]
    assert result.regions == []


def test_three_objects_in_one_photo_are_found_with_their_boxes(catalogues) -> None:  # type: ignore[no-untyped-def]
    table = Image.new("RGB", (1400, 900), (90, 80, 70))
    placed = {"obj-3": (60, 80), "obj-5": (520, 380), "obj-8": (980, 120)}
    for object_id, (x, y) in placed.items():
        seed = int(object_id.split("-")[1])
        item = tilted(textured_object(seed), 25).resize((300, 360))
        table.paste(item, (x, y))
    result = search(catalogues[10], _query(table), top_k=10)
    found = {r.object_id: r.box for r in result.regions}
    assert set(found) == set(placed)
    for object_id, (x, y) in placed.items():
        x0, y0, x1, y1 = found[object_id]
        # The box is the outline of the catalogue photo in the lot, not the whole frame.
        assert x <= x0 + 40 and y <= y0 + 40 and x1 <= x + 340 and y1 <= y + 400
        assert (x1 - x0) * (y1 - y0) < 0.2 * 1400 * 900


def test_two_copies_of_one_object_are_both_found(catalogues) -> None:  # type: ignore[no-untyped-def]
    table = Image.new("RGB", (1100, 560), (120, 110, 100))
    print_ = textured_object(4).resize((300, 375))
    table.paste(print_, (50, 80))
    table.paste(print_.rotate(8, expand=True, fillcolor=(120, 110, 100)), (600, 60))
    result = search(catalogues[10], _query(table), top_k=5)
    boxes = [r.box for r in result.regions if r.object_id == "obj-4"]
    assert len(boxes) == 2
    assert sorted(b[0] for b in boxes)[0] < 200 and sorted(b[0] for b in boxes)[1] > 500


@pytest.mark.parametrize(
    "view",
    [
        lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        lambda im: tilted(im, 40),
        lambda im: tilted(im, -40),
    ],
    ids=["mirrored", "tilted 40", "tilted -40"],
)
def test_mirrored_and_tilted_photos_still_verify(catalogues, view) -> None:  # type: ignore[no-untyped-def]
    best = search(catalogues[10], _query(view(textured_object(6))), top_k=3).hits[0]
    assert best.object_id == "obj-6" and best.decision is Decision.MATCH and best.inliers >= 12


def test_the_evidence_of_a_match_in_a_lot_shows_the_points_the_search_found(catalogues) -> None:  # type: ignore[no-untyped-def]
    from engine.evidence import verify_as_searched
    from models.local_features import FEATURES_KEY, LocalFeatures

    table = Image.new("RGB", (1400, 900), (90, 80, 70))
    table.paste(tilted(textured_object(7), 35).resize((240, 300)), (100, 120))
    table.paste(tilted(textured_object(2), -30).resize((260, 320)), (800, 400))
    query = _query(table)
    services = catalogues[10]
    result = search(services, query, top_k=5)
    assert {h.object_id for h in result.matches} == {"obj-7", "obj-2"}
    for hit in result.matches:
        blob = services.catalogue.local_features([hit.photo_id], FEATURES_KEY)[hit.photo_id]
        drawn = verify_as_searched(services, query, hit.photo_id, LocalFeatures.from_bytes(blob))
        assert drawn.is_match and drawn.inliers >= 0.8 * (hit.inliers or 0)
