"""Local retrieval's filter (`engine.search.local.vote`): the cached `IdFilter` masks the
votes exactly as the set of allowed ids did."""

from __future__ import annotations

import numpy as np

from engine.search.local import NEIGHBOURS, vote
from models.local_features import extract_query_features
from storage.index.filters import IdFilter
from tests.utils.images import photographed, textured_object


class _Descriptors:
    """A descriptor index answering every query descriptor with random photos."""

    size = 1000

    def __init__(self, n: int) -> None:
        rng = np.random.default_rng(1)
        self.dist = np.sort(rng.uniform(0.1, 1.0, size=(n, NEIGHBOURS)), axis=1).astype("f4")
        self.photos = rng.integers(1, 40, size=(n, NEIGHBOURS))
        self.points = rng.integers(0, 500, size=(n, NEIGHBOURS))

    def search(self, desc: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.dist, self.photos, self.points


def test_an_id_filter_keeps_exactly_the_allowed_photos_votes() -> None:
    query = extract_query_features(np.asarray(photographed(textured_object(2), seed=1)))
    index = _Descriptors(len(query))
    everything = vote(index, query)  # type: ignore[arg-type]
    allowed = {3, 7, 8, 21, 39, 1000}
    expected = {pid: pairs for pid, pairs in everything.items() if pid in allowed}
    assert expected and len(expected) < len(everything)
    for given in (IdFilter(sorted(allowed)), allowed):  # the cache's filter; a plain set
        got = vote(index, query, allowed=given)  # type: ignore[arg-type]
        assert got.keys() == expected.keys()
        assert all(np.array_equal(got[p], expected[p]) for p in got)
    assert vote(index, query, allowed=IdFilter([])) == {}  # type: ignore[arg-type]
