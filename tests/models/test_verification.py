import cv2
import numpy as np
import pytest

from kernel.errors import InvalidInput
from models.local_features import extract_local_features
from models.verification import MIN_INLIERS, verify
from tests.utils.images import keypoint_texture

CORNER_TOLERANCE_PX = 4.0


textured = keypoint_texture


@pytest.fixture(scope="module")
def catalogue():
    img = textured(10)
    return img, extract_local_features(img)


def project(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return cv2.perspectiveTransform(pts.reshape(-1, 1, 2).astype(np.float64), h).reshape(-1, 2)


def corners(w: int, h: int) -> np.ndarray:
    return np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)


def test_known_homography_is_recovered(catalogue):
    img, feats = catalogue
    truth = np.array([[0.9, 0.1, 60.0], [-0.05, 1.0, 40.0], [1e-4, 2e-4, 1.0]])
    query = cv2.warpPerspective(img, truth, (680, 540), borderValue=(200, 190, 180))
    result = verify(extract_local_features(query), feats)
    assert result.is_match and result.inliers >= MIN_INLIERS
    assert result.model == "homography" and not result.mirrored
    box = corners(480, 360)
    err = np.abs(project(result.transform, box) - project(truth, box)).max()
    assert err < CORNER_TOLERANCE_PX
    np.testing.assert_allclose(result.query_quad, project(truth, box), atol=CORNER_TOLERANCE_PX)
    expected = project(truth, box)
    x0, y0 = expected.min(axis=0)
    x1, y1 = expected.max(axis=0)
    assert np.allclose(result.query_box, (x0, y0, x1, y1), atol=CORNER_TOLERANCE_PX + 1)
    assert len(result.query_pts) == len(result.candidate_pts) == result.inliers
    assert 0 < result.inlier_ratio <= 1


@pytest.mark.parametrize("k", [1, 2, 3])
def test_rotations_verify(catalogue, k):
    img, feats = catalogue
    result = verify(extract_local_features(np.ascontiguousarray(np.rot90(img, k))), feats)
    assert result.is_match, result.inliers


def test_crop_verifies_and_box_is_clipped(catalogue):
    img, feats = catalogue
    crop = img[60:300, 100:420].copy()
    result = verify(extract_local_features(crop), feats)
    assert result.is_match
    # The catalogue photo extends beyond the crop: its corners land outside the query.
    assert result.query_box == (0, 0, 320, 240)
    np.testing.assert_allclose(result.transform[:2, 2], (-100, -60), atol=2)


def test_mirror_verifies(catalogue):
    img, feats = catalogue
    mirrored = np.ascontiguousarray(img[:, ::-1])
    result = verify(extract_local_features(mirrored), feats)
    assert result.is_match and result.mirrored
    # Candidate corner (0, 0) lands at the query's top right.
    assert np.abs(result.query_quad[0] - (480, 0)).max() < CORNER_TOLERANCE_PX
    direct = verify(extract_local_features(mirrored), feats, try_mirror=False)
    assert direct.inliers < result.inliers / 4


def test_partial_occlusion_verifies(catalogue):
    img, feats = catalogue
    occluded = img.copy()
    occluded[:, :260] = 127
    cv2.circle(occluded, (380, 250), 60, (20, 200, 20), -1)
    result = verify(extract_local_features(occluded), feats)
    assert result.is_match


def test_scaled_down_photo_in_a_larger_scene(catalogue):
    img, feats = catalogue
    scene = textured(11, (1400, 1000)) // 3 + 80
    small = cv2.resize(img, (300, 225), interpolation=cv2.INTER_AREA)
    scene[500:725, 900:1200] = small
    result = verify(extract_local_features(scene, max_side=1400), feats)
    assert result.is_match
    assert np.allclose(result.query_box, (900, 500, 1200, 725), atol=6)


def test_unrelated_image_is_rejected(catalogue):
    _, feats = catalogue
    for seed in (20, 21, 22):
        result = verify(extract_local_features(textured(seed)), feats)
        assert result.inliers < MIN_INLIERS and not result.is_match


def test_empty_query_is_no_match(catalogue):
    _, feats = catalogue
    blank = extract_local_features(np.full((200, 200, 3), 90, np.uint8))
    result = verify(blank, feats)
    assert result.inliers == 0 and result.model is None and result.query_box is None


def test_bad_arguments(catalogue):
    img, feats = catalogue
    orb = extract_local_features(img, method="orb")
    with pytest.raises(InvalidInput):
        verify(orb, feats)
    with pytest.raises(InvalidInput):
        verify(feats, feats, ratio=1.5)


def test_orb_verifies_too(catalogue):
    img, _ = catalogue
    orb = extract_local_features(img, method="orb")
    rotated = extract_local_features(np.ascontiguousarray(np.rot90(img)), method="orb")
    assert verify(rotated, orb).is_match
