"""What a search may return, worked out once per filter and catalogue version.

A filtered search (stolen objects only, one institution) needs the photo ids it may return
and, for its record, the number of objects it covered. Fetched from SQL on every query, both
cost O(N) at a million photos (~250 ms and ~150 ms), and turning the ids into a FAISS
selector cost as much again. `FilterCache` keeps, per (statuses, institutions), an
`IdFilter` (sorted ids, its bitmap selector built once) and the object count, stamped with
`Catalogue.filter_version` (one primary-key SELECT per search): a photo change bumps its first
part, a status change its second, and either makes the next search of that filter fetch
afresh. The unfiltered count is cached the same way.

The cache is bounded (least recently used filters go first): an `IdFilter` of a million ids
holds ~8 MB.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from kernel.enums import ObjectStatus
from storage.index.filters import IdFilter

__all__ = ["DEFAULT_FILTERS", "FilterCache", "Scope", "ScopeSource"]

#: Filters kept. The service's own searches use two or three (lost objects; all; lost of one
#: institution); more only costs a refetch.
DEFAULT_FILTERS = 8

_Key = tuple[tuple[str, ...], tuple[str, ...]]


class ScopeSource(Protocol):
    """What the cache reads (`storage.catalogue.Catalogue` is one)."""

    def filter_version(self) -> tuple[int, int]: ...

    def photo_ids_where(
        self,
        *,
        statuses: Sequence[ObjectStatus] | None = None,
        institutions: Sequence[str] | None = None,
    ) -> np.ndarray: ...

    def count_objects_where(
        self,
        *,
        statuses: Sequence[ObjectStatus] | None = None,
        institutions: Sequence[str] | None = None,
    ) -> int: ...


@dataclass(frozen=True)
class Scope:
    """The photos a search may return (None: every photo of the index) and the catalogue
    objects with photos among them."""

    allowed: IdFilter | None
    objects: int


@dataclass(frozen=True)
class _Entry:
    version: tuple[int, int]
    scope: Scope


class FilterCache:
    """`Scope`s by filter, valid while the catalogue's filter version stays the same."""

    def __init__(self, *, size: int = DEFAULT_FILTERS) -> None:
        self._size = max(1, size)
        self._entries: OrderedDict[_Key, _Entry] = OrderedDict()
        # Held while a missing scope is fetched: concurrent searches of one filter then fetch
        # it once, not once each.
        self._lock = threading.Lock()
        #: Scopes fetched from the catalogue (misses), for tests and benchmarks.
        self.fetches = 0

    def __len__(self) -> int:
        return len(self._entries)

    def scope(
        self,
        source: ScopeSource,
        *,
        statuses: Sequence[ObjectStatus] | None = None,
        institutions: Sequence[str] | None = None,
    ) -> Scope:
        """The scope of the filter; fetched only when it is not cached for the catalogue's
        current version."""
        # Sorted and deduplicated: ["stolen", "missing"] and ["missing", "stolen"] are one.
        key: _Key = (
            tuple(sorted({str(s) for s in statuses or ()})),
            tuple(sorted(set(institutions or ()))),
        )
        # Read before the fetch: what is fetched next is at least this new, so an entry
        # can only be newer than its stamp, never older.
        version = source.filter_version()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.version == version:
                self._entries.move_to_end(key)
                return entry.scope
            scope = _fetch(source, statuses=statuses, institutions=institutions)
            self.fetches += 1
            self._entries[key] = _Entry(version=version, scope=scope)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
            return scope

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _fetch(
    source: ScopeSource,
    *,
    statuses: Sequence[ObjectStatus] | None,
    institutions: Sequence[str] | None,
) -> Scope:
    statuses = list(statuses) if statuses else None
    institutions = list(institutions) if institutions else None
    objects = source.count_objects_where(statuses=statuses, institutions=institutions)
    if statuses is None and institutions is None:
        return Scope(allowed=None, objects=objects)
    allowed = IdFilter(source.photo_ids_where(statuses=statuses, institutions=institutions))
    if len(allowed):  # an empty filter never reaches FAISS (the indexes answer at once)
        # Built now, under the cache's lock, so that no query pays for it.
        allowed.selector()
    return Scope(allowed=allowed, objects=objects)
