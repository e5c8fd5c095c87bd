# Named singleton markers (roles, states, NEED_DATA, PAUSED). Each marker is a class whose
# own type is itself, so `type(event)` dispatch works on markers and real events alike, as
# it does with h11's markers.
from __future__ import annotations

from typing import Any


class Sentinel(type):
    """Metaclass of the markers: a marker's repr is its name and `type(M) is M`."""

    def __new__(
        cls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwds: Any
    ) -> Sentinel:
        if bases != (Sentinel,):
            raise TypeError("markers derive from Sentinel only")
        marker = super().__new__(cls, name, bases, namespace, **kwds)
        marker.__class__ = marker  # type: ignore[assignment]
        return marker

    def __repr__(self) -> str:
        return self.__name__
