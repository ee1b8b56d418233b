import cv2
import numpy as np
import pytest

from artmatch.errors import InvalidInput
from models.local_features import (
    LocalFeatures,
    extract_local_features,
    matching_descriptors,
    mirror_descriptors,
)


def textured(seed: int, size: tuple[int, int] = (480, 360)) -> np.ndarray:
    """An RGB image full of corners and blobs, the kind of structure SIFT keys on."""
    rng = np.random.default_rng(seed)
    width, height = size
    img = (rng.random((height // 8, width // 8, 3)) * 255).astype(np.uint8)
    img = cv2.resize(img, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(40):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(5, 40))
        if rng.random() < 0.5:
            cv2.rectangle(img, (x, y), (x + r, y + int(rng.integers(5, 40))), color, -1)
        else:
            cv2.circle(img, (x, y), r, color, -1)
    for _ in range(6):
        word = "".join(chr(int(c)) for c in rng.integers(65, 91, 4))
        org = (int(rng.integers(0, width - 100)), int(rng.integers(30, height)))
        cv2.putText(img, word, org, cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 2)
    return img


def test_keypoints_are_in_original_pixels():
    img = textured(1, (1600, 1200))
    small = extract_local_features(img, max_side=400, max_keypoints=300)
    assert (small.width, small.height) == (1600, 1200)
    assert 50 < len(small) <= 300
    assert small.scale == pytest.approx(4.0)
    assert small.keypoints[:, 0].max() > 800 and small.keypoints[:, 1].max() > 600
    assert small.keypoints.dtype == np.float32 and small.descriptors.dtype == np.uint8


def test_round_trip_is_lossless_for_sift():
    feats = extract_local_features(textured(2), max_keypoints=500)
    blob = feats.to_bytes()
    back = LocalFeatures.from_bytes(blob)
    np.testing.assert_array_equal(back.keypoints, feats.keypoints)
    np.testing.assert_array_equal(back.descriptors, feats.descriptors)
    assert (back.width, back.height, back.method, back.scale) == (
        feats.width,
        feats.height,
        feats.method,
        feats.scale,
    )
    assert len(blob) < len(feats) * 150


def test_orb_round_trip():
    feats = extract_local_features(textured(3), method="orb", max_keypoints=300)
    back = LocalFeatures.from_bytes(feats.to_bytes())
    assert back.method == "orb" and back.descriptors.shape[1] == 32
    np.testing.assert_array_equal(back.descriptors, feats.descriptors)


def test_rootsift_descriptors_are_unit_vectors():
    desc = matching_descriptors(extract_local_features(textured(4), max_keypoints=200))
    np.testing.assert_allclose(np.linalg.norm(desc, axis=1), 1.0, atol=1e-3)


def test_mirrored_descriptors_match_descriptors_of_the_flipped_image():
    img = textured(5)
    plain = extract_local_features(img, max_keypoints=400)
    flipped = extract_local_features(img[:, ::-1].copy(), max_keypoints=400)
    a = mirror_descriptors(matching_descriptors(plain))
    b = matching_descriptors(flipped)
    nearest = (a @ b.T).max(axis=1)
    # Most keypoints reappear in the flipped image with a near-identical descriptor.
    assert np.median(nearest) > 0.97


def test_blank_image_gives_empty_features():
    feats = extract_local_features(np.full((100, 100, 3), 128, np.uint8))
    assert len(feats) == 0
    assert LocalFeatures.from_bytes(feats.to_bytes()).descriptors.shape == (0, 128)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((8, 8, 3), np.uint8),
        np.zeros((50, 50, 3), np.float32),
        np.zeros((50, 50, 2), np.uint8),
    ],
)
def test_bad_images_are_rejected(bad):
    with pytest.raises(InvalidInput):
        extract_local_features(bad)


def test_bad_arguments_are_rejected():
    with pytest.raises(InvalidInput):
        extract_local_features(textured(6), method="surf")
    with pytest.raises(InvalidInput):
        LocalFeatures.from_bytes(b"not a blob")
