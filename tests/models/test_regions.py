import cv2
import numpy as np
import pytest

from kernel.errors import InvalidInput
from models.local_features import LocalFeatures
from models.regions import Box, mask_out, propose_regions


def textured(seed: int, size: tuple[int, int]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    width, height = size
    img = (rng.random((height // 6, width // 6, 3)) * 255).astype(np.uint8)
    img = cv2.resize(img, (width, height), interpolation=cv2.INTER_NEAREST)
    for _ in range(30):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        cv2.circle(img, (x, y), int(rng.integers(4, 20)), color, 2)
    return img


def scene(noisy: bool) -> tuple[np.ndarray, list[Box]]:
    rng = np.random.default_rng(7)
    img = np.full((700, 1000, 3), (190, 180, 170), np.uint8)
    if noisy:
        noise = rng.normal(0, 6, img.shape)
        img = np.clip(img + noise, 0, 255).astype(np.uint8)
    truth = [Box(80, 120, 380, 520), Box(560, 200, 900, 460)]
    for i, box in enumerate(truth):
        img[box.y0 : box.y1, box.x0 : box.x1] = textured(i, (box.width, box.height))
    return img, truth


@pytest.mark.parametrize("noisy", [False, True])
def test_two_objects_are_found(noisy):
    img, truth = scene(noisy)
    boxes = propose_regions(img, max_regions=6)
    assert boxes[-1] == Box(0, 0, 1000, 700)
    for target in truth:
        assert max(target.iou(b) for b in boxes) > 0.5, (target, boxes)


def test_plain_image_gives_only_the_whole_image():
    img = np.full((300, 400, 3), 128, np.uint8)
    assert propose_regions(img) == [Box(0, 0, 400, 300)]
    assert propose_regions(img, include_whole=False) == []


def test_max_regions_is_respected():
    img, _ = scene(False)
    assert len(propose_regions(img, max_regions=1)) == 1


def test_box_helpers():
    a, b = Box(0, 0, 10, 10), Box(5, 0, 15, 10)
    assert a.area == 100 and a.iou(b) == pytest.approx(50 / 150)
    assert a.contains(np.array([[1, 1], [10, 5]], np.float32)).tolist() == [True, False]


def test_mask_out_removes_points_inside():
    points = np.array([[5, 5], [50, 50], [95, 5]], np.float32)
    feats = LocalFeatures(
        keypoints=points,
        descriptors=np.arange(3 * 128, dtype=np.uint8).reshape(3, 128),
        width=100,
        height=100,
        method="rootsift",
    )
    left = mask_out(feats, Box(40, 40, 60, 60))
    assert left.keypoints.tolist() == [[5, 5], [95, 5]]
    np.testing.assert_array_equal(left.descriptors, feats.descriptors[[0, 2]])
    assert (left.width, left.height) == (100, 100)
    with pytest.raises(InvalidInput):
        mask_out(feats, (10, 10, 0, 0))


def test_bad_image():
    with pytest.raises(InvalidInput):
        propose_regions(np.zeros((5, 5, 3), np.float32))


@pytest.mark.parametrize("shape", [(5, 5), (3, 3000), (3000, 3), (1, 1)])
def test_a_photo_too_thin_for_regions_is_its_one_region(shape):
    image = np.zeros((*shape, 3), np.uint8)
    assert propose_regions(image) == [Box(0, 0, shape[1], shape[0])]
    assert propose_regions(image, include_whole=False) == []
