"""A typed name -> object registry with a decorator, used for datasets, metrics and models.

Built-in entries can be *lazy*, named as ``"module:object"`` (as lm-evaluation-harness names its
tasks): the registry lists them without importing their modules, and imports one the first time
it is asked for. So a registry never imports its plugins at module level (no import cycle between
``uarbench.models`` and ``baselines``), and the built-ins are listed in one place.
"""
from __future__ import annotations

import importlib
from typing import Callable, Generic, Iterator, TypeVar

from uarbench.errors import UarbenchError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, lazy: dict[str, str] | None = None) -> None:
        """``lazy``: name -> "module:object" of built-ins imported on first use."""
        self.kind = kind
        self._items: dict[str, T] = {}
        self._lazy: dict[str, str] = dict(lazy or {})

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            target = self._lazy.pop(name, None)
            if target is not None and target != _target_of(obj):
                raise ValueError(f"{self.kind} {name!r} is a built-in ({target}); "
                                 f"{_target_of(obj)} cannot take its name")
            self._items[name] = obj
            return obj
        return deco

    def get(self, name: str) -> T:
        try:
            if name in self._lazy:
                self._load(name)
            return self._items[name]
        except (KeyError, TypeError):        # TypeError: an unhashable name (a list)
            known = ", ".join(self.names()) or "(none)"
            raise UarbenchError(f"unknown {self.kind} {name!r}.",
                                fix=f"use one of: {known}.") from None

    def _load(self, name: str) -> None:
        module, _, attr = self._lazy[name].partition(":")
        obj = getattr(importlib.import_module(module), attr)
        if name in self._lazy:            # its module does not register it itself
            self.register(name)(obj)

    def names(self) -> list[str]:
        return sorted({*self._items, *self._lazy})

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._items or name in self._lazy
        except TypeError:         # unhashable (a list or table from a config file): not a name
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def _target_of(obj: object) -> str:
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', '?')}"
