"""A typed name -> object registry with a decorator, used for datasets, metrics and models."""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from uarbench.errors import UarbenchError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj
        return deco

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except (KeyError, TypeError):        # TypeError: an unhashable name (a list)
            known = ", ".join(sorted(self._items)) or "(none)"
            raise UarbenchError(f"unknown {self.kind} {name!r}.",
                                fix=f"use one of: {known}.") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._items
        except TypeError:         # unhashable (a list or table from a config file): not a name
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
