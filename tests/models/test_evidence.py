import cv2
import numpy as np
import pytest

from kernel.errors import InvalidInput
from models.evidence import CAPTION_PX, CAPTION_WORDS, caption_font, draw_evidence, encode_png
from models.verification import Verification


def make_verification() -> Verification:
    rng = np.random.default_rng(0)
    cand = rng.uniform(0, 200, (30, 2)).astype(np.float32)
    query = cand * 2 + np.float32([100, 50])
    quad = np.array([[100, 50], [500, 50], [500, 450], [100, 450]], dtype=np.float64)
    return Verification(
        inliers=30,
        matches_after_ratio=40,
        model="homography",
        transform=np.array([[2.0, 0, 100], [0, 2.0, 50], [0, 0, 1]]),
        query_pts=query,
        candidate_pts=cand,
        query_quad=quad,
    )


def plain_pair(max_height: int = 720):
    query = np.full((600, 800, 3), 120, np.uint8)
    candidate = np.full((200, 200, 3), 60, np.uint8)
    return query, candidate


def test_size_and_layout():
    query, candidate = plain_pair()
    out = draw_evidence(query, candidate, make_verification(), max_height=500)
    content = 500 - CAPTION_PX
    # Both photos at the content height: 800x600 -> 608 wide, 200x200 -> 456 wide, 8 px gap.
    assert out.shape == (500, round(800 * content / 600) + 8 + content, 3)
    assert out.dtype == np.uint8


def test_lines_and_outline_are_drawn():
    query, candidate = plain_pair()
    drawn = draw_evidence(query, candidate, make_verification(), max_height=500)
    bare = draw_evidence(query, candidate, Verification(), max_height=500)
    assert drawn.shape == bare.shape
    changed = np.any(drawn != bare, axis=2)
    content = changed[: 500 - CAPTION_PX]
    # Lines cross the gap between the photos and the outline sits on the query side.
    assert content[:, 608:616].any()
    assert content[:, :608].sum() > 1000
    assert changed[500 - CAPTION_PX :].any()  # the caption differs too


def test_small_images_are_not_upscaled_past_their_size():
    out = draw_evidence(
        np.zeros((100, 120, 3), np.uint8), np.zeros((80, 80, 3), np.uint8), Verification()
    )
    assert out.shape[0] == 100 + CAPTION_PX


def test_png_round_trip():
    query, candidate = plain_pair()
    img = draw_evidence(query, candidate, make_verification(), max_height=300)
    data = encode_png(img)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    decoded = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(decoded, img)


def test_bad_input():
    query, candidate = plain_pair()
    with pytest.raises(InvalidInput):
        draw_evidence(query.astype(np.float32), candidate, Verification())
    with pytest.raises(InvalidInput):
        draw_evidence(query, candidate, Verification(), labels=("only one",))
    with pytest.raises(InvalidInput):
        encode_png(np.zeros((4, 4, 5), np.uint8))


def test_a_frieze_beside_a_scroll_stays_a_bounded_picture():
    frieze, scroll = np.zeros((17, 5000, 3), np.uint8), np.zeros((3000, 50, 3), np.uint8)
    out = draw_evidence(frieze, scroll, Verification(), max_height=720)
    # one shared height would make the frieze 5000 * 676 / 17 = 199,000 pixels wide
    assert out.shape[1] <= 4 * 720 + 8 and out.shape[0] <= 720


def test_candidate_points_are_drawn_in_the_frame_of_its_features():
    query, candidate = plain_pair()
    v = make_verification()
    # the photo now decoded at half the size its stored features were computed at
    halved = candidate[::2, ::2]
    a = draw_evidence(query, candidate, v, max_height=500)
    b = draw_evidence(query, halved, v, max_height=500, candidate_size=(200, 200))
    c = draw_evidence(query, halved, v, max_height=500)
    assert np.any(a != c, axis=2).sum() > 0.01 * a.shape[0] * a.shape[1]
    changed = np.any(a != b, axis=2)
    assert changed.sum() < 0.01 * changed.size


def caption_band(out: np.ndarray) -> np.ndarray:
    return out[-CAPTION_PX:]


def test_the_caption_names_both_photos_and_the_object():
    query, candidate = plain_pair()
    v = make_verification()
    plain = draw_evidence(query, candidate, v, max_height=500, labels=("a.jpg", "X-1 · front"))
    named = draw_evidence(
        query, candidate, v, max_height=500, labels=("b.jpg", "X-1 · front"), object_label="X-1"
    )
    other = draw_evidence(
        query, candidate, v, max_height=500, labels=("b.jpg", "X-1 · front"), object_label="X-2"
    )
    # the names change pixels in the band only, never on the photos
    assert np.array_equal(plain[:-CAPTION_PX], named[:-CAPTION_PX])
    assert np.any(caption_band(plain) != caption_band(named))
    assert np.any(caption_band(named) != caption_band(other))


def test_cyrillic_and_diacritics_are_drawn_not_replaced():
    font = caption_font(15)
    # DejaVu draws each of these letters differently; Hershey fonts drew "?" for all.
    masks = [bytes(font.getmask(ch)) for ch in "ЖШђčøé"]
    assert len(set(masks)) == len(masks)
    query, candidate = plain_pair()
    v = make_verification()
    cyr = draw_evidence(query, candidate, v, max_height=500, object_label="Икона Богородице")
    lat = draw_evidence(query, candidate, v, max_height=500, object_label="Ikona Bogorodice")
    assert np.any(caption_band(cyr) != caption_band(lat))


def test_the_legend_words_are_translated():
    asked: list[str] = []

    def translate(word: str) -> str:
        asked.append(word)
        return word.upper()

    query, candidate = plain_pair()
    v = make_verification()
    english = draw_evidence(query, candidate, v, max_height=500)
    upper = draw_evidence(query, candidate, v, max_height=500, translate=translate)
    assert {"matching points", "matched region", "query photo", "catalogue photo"} <= set(asked)
    assert set(asked) <= set(CAPTION_WORDS) | {"homography"}
    assert np.any(caption_band(english) != caption_band(upper))


def test_the_legend_shows_a_box_in_the_outline_colour():
    query, candidate = plain_pair()
    out = draw_evidence(query, candidate, make_verification(), max_height=500)
    band = caption_band(out)
    green = (band[:, :, 0] == 0) & (band[:, :, 1] == 200) & (band[:, :, 2] == 0)
    assert green.sum() > 30


def test_a_long_name_is_fitted_into_the_picture():
    query, candidate = np.zeros((300, 200, 3), np.uint8), np.zeros((300, 200, 3), np.uint8)
    out = draw_evidence(query, candidate, Verification(), labels=("x" * 500, "y" * 500))
    assert out.shape[1] == 200 + 8 + 200
