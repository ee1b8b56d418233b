"""`IdFilter`: the set of photo ids a filtered search may return, built once and reused.

A filtered search (stolen objects only, one institution...) used to fetch every allowed id from
SQL and build a FAISS selector from them on every query: O(N) work per query at a million
photos. An `IdFilter` holds the ids sorted plus a bitmap selector built on first use, so the
engine can cache one per filter and catalogue version (`engine.search.filters`) and every
query after the first pays nothing for it. Index implementations accept an `IdFilter` (or, for
callers that have only ids, a plain array) as ``allowed_ids``.
"""

from __future__ import annotations

from collections.abc import Iterable

import faiss
import numpy as np

__all__ = ["IdFilter", "as_filter"]


class IdFilter:
    """An immutable set of photo ids with a FAISS selector and vectorised membership."""

    __slots__ = ("_bitmap", "_ids", "_selector")

    def __init__(self, ids: np.ndarray | Iterable[int]) -> None:
        arr = np.unique(np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids))
        self._ids = arr.astype(np.int64, copy=False)
        self._bitmap: np.ndarray | None = None
        self._selector: faiss.IDSelector | None = None

    @property
    def ids(self) -> np.ndarray:
        """The allowed ids, sorted, unique (read-only: shared by every query)."""
        view = self._ids.view()
        view.flags.writeable = False
        return view

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, photo_id: object) -> bool:
        if not isinstance(photo_id, (int, np.integer)):
            return False
        i = int(np.searchsorted(self._ids, photo_id))
        return i < len(self._ids) and int(self._ids[i]) == int(photo_id)

    def mask(self, ids: np.ndarray) -> np.ndarray:
        """A boolean array: which of ``ids`` are allowed (any shape; -1 never is)."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(self._ids):
            return np.zeros(ids.shape, dtype=bool)
        pos = np.clip(np.searchsorted(self._ids, ids), 0, len(self._ids) - 1)
        return self._ids[pos] == ids

    def selector(self) -> faiss.IDSelector:
        """A FAISS selector for ``SearchParameters(sel=...)``: a bitmap over ids up to the
        largest, O(1) per test, built on the first call and kept."""
        if self._selector is None:
            top = int(self._ids[-1]) + 1 if len(self._ids) and self._ids[-1] >= 0 else 0
            flags = np.zeros(top, dtype=bool)
            flags[self._ids[self._ids >= 0]] = True
            # The selector keeps a raw pointer: the bitmap must live as long as it does.
            self._bitmap = np.packbits(flags, bitorder="little")
            # Its size is in bytes, not bits: ids past the bitmap must read as absent.
            self._selector = faiss.IDSelectorBitmap(len(self._bitmap), faiss.swig_ptr(self._bitmap))
        return self._selector


def as_filter(allowed: IdFilter | np.ndarray | Iterable[int] | None) -> IdFilter | None:
    """``allowed`` as an `IdFilter` (None stays None: no filter)."""
    if allowed is None or isinstance(allowed, IdFilter):
        return allowed
    return IdFilter(allowed)
