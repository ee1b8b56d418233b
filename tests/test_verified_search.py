"""The second stage through the real pipeline: real CNN, local features, geometry, the
descriptor index and the shipped calibration."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.evidence import evidence_png
from engine.search import search
from ingest.catalogue_csv import iter_items, read_catalogue_csv
from ingest.photos import ingest_photos
from kernel.enums import Decision, ThresholdOn
from models.calibration import Calibration, default_calibration
from models.images import decode_image
from tests.utils.catalogue import write_catalogue
from tests.utils.images import jpeg_bytes, photographed, textured_object

pytestmark = pytest.mark.slow


@pytest.fixture
def catalogue(real_services, tmp_path: Path):
    csv_path = write_catalogue(tmp_path / "c", n_objects=6)
    ingest_photos(real_services, iter_items(read_catalogue_csv(csv_path)))
    return real_services


def _query(img: Image.Image):
    return decode_image(jpeg_bytes(img, quality=85))


@pytest.mark.parametrize(
    "transform",
    [
        lambda im: im.rotate(90, expand=True),
        lambda im: im.rotate(180),
        lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        lambda im: im.crop((40, 60, 300, 380)),
        lambda im: photographed(im, seed=4),
    ],
    ids=["rot90", "rot180", "mirror", "crop", "photographed"],
)
def test_transformed_catalogue_photo_is_verified_first(catalogue, transform) -> None:
    result = search(catalogue, _query(transform(textured_object(2))), top_k=5)
    best = result.hits[0]
    assert best.object_id == "obj-2"
    assert best.verified and best.is_match and best.inliers >= 12
    assert result.verification and result.threshold_on == ThresholdOn.CONFIDENCE


def test_partial_occlusion_is_still_verified(catalogue) -> None:
    img = textured_object(3).copy()
    img.paste((128, 128, 128), (0, 0, 160, 400))  # half of it hidden
    best = search(catalogue, _query(img), top_k=3).hits[0]
    assert best.object_id == "obj-3" and best.is_match


def test_unrelated_photo_gets_no_match(catalogue) -> None:
    result = search(catalogue, _query(textured_object(777)), top_k=5)
    assert result.matches == []
    assert result.regions == []
    assert result.objects_searched == 6


def test_two_objects_in_one_photo_are_both_found_with_boxes(catalogue) -> None:
    table = Image.new("RGB", (900, 520), (90, 80, 70))
    table.paste(textured_object(1).resize((300, 375)), (40, 60))
    table.paste(textured_object(4).resize((300, 375)), (520, 90))
    result = search(catalogue, _query(table), top_k=5)
    found = {r.object_id: r.box for r in result.regions}
    assert set(found) == {"obj-1", "obj-4"}
    x0, y0, x1, y1 = found["obj-4"]
    assert abs(x0 - 520) < 25 and abs(y0 - 90) < 25 and abs(x1 - 820) < 25 and abs(y1 - 465) < 25


def test_evidence_picture_shows_the_match(catalogue) -> None:
    query = _query(photographed(textured_object(5), seed=2))
    result = search(catalogue, query, top_k=1)
    png = evidence_png(catalogue, query, result.hits[0])
    picture = Image.open(io.BytesIO(png))
    assert picture.format == "PNG"
    assert picture.width > picture.height  # side by side


def test_verification_can_be_turned_off(catalogue) -> None:
    result = search(catalogue, _query(textured_object(2)), top_k=3, verify=False)
    assert not result.verification and result.threshold_on == ThresholdOn.SIMILARITY
    assert all(h.inliers is None for h in result.hits)


def test_calibration_is_monotone_and_bounded() -> None:
    cal = default_calibration()
    inliers = np.arange(0, 500)
    confidence = cal.confidence(inliers)
    assert np.all(np.diff(confidence) >= 0) and np.all((confidence >= 0) & (confidence < 1))
    assert confidence[0] == 0.0  # no matching point proves nothing
    assert 0 < cal.threshold < 1
    # a match needs at least MIN_INLIERS' worth of evidence
    assert cal.inliers_for(cal.threshold) >= 12
    with pytest.raises(ValueError, match="fall"):
        Calibration(
            tail_intercept=0.0,
            tail_slope=0.1,
            threshold=0.9,
            lead_similarity=0.8,
            evidence_keypoints=100,
        )


def test_filtered_search_does_not_hide_look_alikes(catalogue) -> None:
    from kernel.enums import ObjectStatus
    from kernel.schemas import StatusChange

    catalogue.catalogue.set_status("obj-1", StatusChange(status=ObjectStatus.STOLEN))
    # an unrelated photo, searched among stolen objects only: the one stolen object is the
    # only candidate, and without geometric proof it is neither a match nor (both photos
    # being full of keypoints that do not match) a lead
    result = search(catalogue, _query(textured_object(777)), statuses=[ObjectStatus.STOLEN])
    assert [h.object_id for h in result.hits] == ["obj-1"]
    assert not result.hits[0].is_match and result.hits[0].decision is Decision.NONE
    # a real photo of it is
    result = search(
        catalogue, _query(photographed(textured_object(1), seed=9)), statuses=[ObjectStatus.STOLEN]
    )
    assert result.hits[0].is_match
