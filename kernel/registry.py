"""Implementations chosen by name from settings (index types, descriptor index types): a
class decorator registers one, a lookup by an unknown name is a `ConfigError` listing the
valid names, and the built-in modules are imported on the first lookup, not before, so that
nothing imports a heavy library (FAISS) until it is needed."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from kernel.errors import ConfigError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, what: str, builtin_modules: Sequence[str]) -> None:
        #: What the names name, for messages ("index kind").
        self.what = what
        self._modules = tuple(builtin_modules)
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: make the decorated class available as ``name``."""

        def decorator(entry: T) -> T:
            self._entries[name] = entry
            return entry

        return decorator

    def _import_builtins(self) -> None:
        for module in self._modules:
            # An implementation whose library is not installed is simply not offered.
            with contextlib.suppress(ImportError):
                importlib.import_module(module)

    def names(self) -> list[str]:
        self._import_builtins()
        return sorted(self._entries)

    def get(self, name: str) -> T:
        """The entry registered as ``name``; `ConfigError` naming the valid ones if none is."""
        if name not in self._entries:
            self._import_builtins()
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.what} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None
