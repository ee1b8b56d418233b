"""Index types by name, like the blob stores (`storage.blobs`): ``settings.index.kind``
picks one, and an unknown name is a `ConfigError` listing the valid ones.

Adding an index type is one new module in `storage.index` whose class has the `IndexType`
class methods (``create``, ``load``, ``from_bytes``), builds instances that satisfy
`VectorIndex`, and is decorated with ``@register_index("name")``; list the module in
`_MODULES` so a lookup by name imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from kernel.registry import Registry
from storage.index.base import IndexMeta, IndexType, VectorIndex

__all__ = [
    "available_indexes",
    "create_index",
    "index_from_bytes",
    "index_type",
    "load_index",
    "register_index",
]

#: Modules that register the built-in index types. They are imported on the first lookup, not
#: with this module, so that the catalogue and the CLI do not import FAISS until they need it.
_MODULES = ("storage.index.faiss_flat", "storage.index.memory", "storage.index.scalable")

_REGISTRY: Registry[IndexType] = Registry("index kind", _MODULES)
_T = TypeVar("_T", bound=IndexType)


def register_index(name: str) -> Callable[[_T], _T]:
    """Class decorator: make the index class available as ``name``."""
    return _REGISTRY.register(name)  # type: ignore[return-value]


def available_indexes() -> list[str]:
    return _REGISTRY.names()


def index_type(kind: str) -> IndexType:
    """The class registered as ``kind``; `ConfigError` naming the valid ones if none is."""
    return _REGISTRY.get(kind)


def create_index(kind: str, *, directory: Path, meta: IndexMeta) -> VectorIndex:
    """A new, empty index of type ``kind`` that saves under ``directory``."""
    return index_type(kind).create(directory=directory, meta=meta)


def load_index(kind: str, directory: Path, *, model: str, model_version: str) -> VectorIndex:
    """The index of type ``kind`` saved under ``directory``; `IndexNotReady` if there is no
    usable one (missing, damaged, of another model)."""
    return index_type(kind).load(directory, model=model, model_version=model_version)


def index_from_bytes(kind: str, data: bytes, *, directory: Path, meta: IndexMeta) -> VectorIndex:
    """An index of type ``kind`` from `VectorIndex.to_bytes` output (a snapshot)."""
    return index_type(kind).from_bytes(data, directory=directory, meta=meta)
