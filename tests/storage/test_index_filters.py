import numpy as np

from storage.index.base import IndexMeta
from storage.index.faiss_flat import FaissVectorIndex
from storage.index.filters import IdFilter, as_filter
from storage.index.memory import MemoryVectorIndex


def test_a_filter_knows_its_members() -> None:
    allowed = IdFilter(np.array([9, 3, 5, 3]))
    assert len(allowed) == 3 and list(allowed.ids) == [3, 5, 9]
    assert 5 in allowed and 4 not in allowed and "5" not in allowed
    assert allowed.mask(np.array([[3, 4], [-1, 9]])).tolist() == [[True, False], [False, True]]
    assert [allowed.selector().is_member(i) for i in range(11)] == [
        i in (3, 5, 9) for i in range(11)
    ]
    assert as_filter(None) is None and as_filter(allowed) is allowed


def test_an_empty_filter_allows_nothing() -> None:
    empty = IdFilter([])
    assert len(empty) == 0 and not empty.mask(np.array([0, 1])).any()
    assert not empty.selector().is_member(0)


def test_both_indexes_return_only_allowed_ids(tmp_path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(100, 150)
    allowed = IdFilter(ids[::7])
    for index in (
        FaissVectorIndex.create(directory=tmp_path, meta=IndexMeta("m", "1", 8)),
        MemoryVectorIndex.create(directory=tmp_path, meta=IndexMeta("m", "1", 8)),
    ):
        index.add(ids, vectors)
        for given in (allowed, allowed.ids.copy()):
            _, found = index.search(vectors[:3], 5, allowed_ids=given)
            assert set(found[found >= 0].ravel()) <= set(ids[::7].tolist())
            assert (found >= 0).sum() == 15
