"""A cached property without ``functools.cached_property``'s lock (Python 3.11 takes an RLock
on every first access; a journey computes a dozen views per event). Values are immutable views
of immutable objects, so computing one twice in a race would be harmless anyway."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

T = TypeVar("T")

if TYPE_CHECKING:
    from functools import cached_property as cached
else:

    class cached(Generic[T]):
        def __init__(self, fn: Callable[[Any], T]) -> None:
            self.fn = fn
            self.name = fn.__name__
            self.__doc__ = fn.__doc__

        def __set_name__(self, owner: type, name: str) -> None:
            self.name = name

        def __get__(self, obj: Any, owner: type | None = None) -> Any:
            if obj is None:
                return self
            value = self.fn(obj)
            obj.__dict__[self.name] = value  # found there from now on, before this descriptor
            return value


__all__ = ["cached"]
