"""Descriptor index types by name, like the vector indexes (`storage.index.registry`):
``settings.index.descriptor_kind`` picks one, and an unknown name is a `ConfigError` listing
the valid ones.

Adding a type is one new module in `storage.descriptors` whose class has the
`DescriptorIndexType` class methods (``create``, ``load``), builds instances that satisfy
`DescriptorIndex`, and is decorated with ``@register_descriptor_index("name")``; list the
module in `_MODULES` so a lookup by name imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from kernel.registry import Registry
from storage.descriptors.base import DescriptorIndex, DescriptorMeta

__all__ = [
    "DescriptorIndexType",
    "available_descriptor_indexes",
    "create_descriptor_index",
    "descriptor_index_type",
    "load_descriptor_index",
    "register_descriptor_index",
]

#: Imported on the first lookup, not with this module, so nothing imports FAISS until needed.
_MODULES = ("storage.descriptors.faiss_index", "storage.descriptors.memory")


class DescriptorIndexType(Protocol):
    """What the registry needs of a descriptor index class: ways to make and load one."""

    def create(self, *, directory: Path, meta: DescriptorMeta) -> DescriptorIndex:
        """A new, empty index that saves under ``directory``."""

    def load(self, directory: Path, *, features_key: str) -> DescriptorIndex:
        """The index saved under ``directory``; `IndexNotReady` if missing, damaged or of
        other features."""


_REGISTRY: Registry[DescriptorIndexType] = Registry("descriptor index kind", _MODULES)
_T = TypeVar("_T", bound=DescriptorIndexType)


def register_descriptor_index(name: str) -> Callable[[_T], _T]:
    """Class decorator: make the descriptor index class available as ``name``."""
    return _REGISTRY.register(name)  # type: ignore[return-value]


def available_descriptor_indexes() -> list[str]:
    return _REGISTRY.names()


def descriptor_index_type(kind: str) -> DescriptorIndexType:
    """The class registered as ``kind``; `ConfigError` naming the valid ones if none is."""
    return _REGISTRY.get(kind)


def create_descriptor_index(kind: str, *, directory: Path, meta: DescriptorMeta) -> DescriptorIndex:
    """A new, empty descriptor index of type ``kind`` that saves under ``directory``."""
    return descriptor_index_type(kind).create(directory=directory, meta=meta)


def load_descriptor_index(kind: str, directory: Path, *, features_key: str) -> DescriptorIndex:
    """The descriptor index of type ``kind`` saved under ``directory``; `IndexNotReady` if
    there is no usable one (missing, damaged, of other features)."""
    return descriptor_index_type(kind).load(directory, features_key=features_key)
