# The receive limits of one connection, as given to Connection(...).
from __future__ import annotations


class Limits:
    """What a connection accepts from its peer.

    `line` bounds the request line (or status line) -> 414; `field_count` the number of
    header or trailer fields -> 431; `field_size` one field line -> 431; `head` a whole
    head or trailer section -> 431. A `line` or `field_size` of 0 leaves only the `head`
    cap in force.
    """

    __slots__ = ("line", "field_count", "field_size", "head")

    def __init__(self, line: int, field_count: int, field_size: int, head: int) -> None:
        for name, value in (
            ("max_request_line_size", line),
            ("max_field_count", field_count),
            ("max_field_size", field_size),
            ("max_incomplete_event_size", head),
        ):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative int, not {value!r}")
        self.line = line or head
        self.field_count = field_count
        self.field_size = field_size or head
        self.head = head
