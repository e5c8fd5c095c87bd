"""Run the same conversation through h11 and protocol, and describe what each did.

A conversation is a list of steps; the outcome of each step is reduced to plain data
(event fields, states, bytes sent, error class and hint) so the two engines compare with ==.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import h11

from treadle import protocol

ENGINES: tuple[ModuleType, ModuleType] = (h11, protocol)

# A step: ("recv", bytes) | ("next",) | ("drain",) | ("send", factory) | ("cycle",)
#         | ("send_failed",)
Step = tuple[Any, ...]


def describe_event(event: Any) -> Any:
    """An event (or marker) as comparable plain data."""
    name = type(event).__name__
    if name in ("NEED_DATA", "PAUSED"):
        return name
    if name == "Data":
        return (name, bytes(event.data), event.chunk_start, event.chunk_end)
    if name == "ConnectionClosed":
        return (name,)
    fields: list[Any] = [name, [(bytes(n), bytes(v)) for n, v in event.headers.raw_items()],
                         list(event.headers)]
    if name == "Request":
        fields += [bytes(event.method), bytes(event.target), bytes(event.http_version)]
    elif name != "EndOfMessage":
        fields += [event.status_code, bytes(event.reason), bytes(event.http_version)]
    return tuple(fields)


def describe_conn(conn: Any) -> Any:
    states = {repr(role): repr(state) for role, state in conn.states.items()}
    return (states, conn.their_http_version, conn.client_is_waiting_for_100_continue,
            conn.they_are_waiting_for_100_continue, conn.trailing_data)


def run(module: ModuleType, role: str, steps: Sequence[Step], **kwargs: Any) -> list[Any]:
    """Outcomes of `steps` on a fresh connection of `module` playing `role`."""
    conn = module.Connection(getattr(module, role), **kwargs)
    out: list[Any] = []
    for step in steps:
        try:
            out.append(_do(module, conn, step))
        except module.ProtocolError as exc:
            out.append(("error", type(exc).__name__, exc.error_status_hint))
        except Exception as exc:  # the engines must agree on these too
            out.append(("raised", type(exc).__name__))
        out.append(describe_conn(conn))
    return out


def _do(module: ModuleType, conn: Any, step: Step) -> Any:
    kind = step[0]
    if kind == "recv":
        conn.receive_data(step[1])
        return "ok"
    if kind == "next":
        return describe_event(conn.next_event())
    if kind == "drain":
        events = []
        while True:
            event = conn.next_event()
            events.append(describe_event(event))
            if event is module.NEED_DATA or event is module.PAUSED:
                return events
            if type(event).__name__ == "ConnectionClosed":
                return events
    if kind == "send":
        factory: Callable[[ModuleType], Any] = step[1]
        result = conn.send(factory(module))
        return None if result is None else bytes(result)
    if kind == "cycle":
        conn.start_next_cycle()
        return "ok"
    if kind == "send_failed":
        conn.send_failed()
        return "ok"
    raise AssertionError(kind)


def both(role: str, steps: Sequence[Step], **kwargs: Any) -> tuple[list[Any], list[Any]]:
    return run(h11, role, steps, **kwargs), run(protocol, role, steps, **kwargs)


def req(method: str = "GET", target: str = "/", headers: Any = None, version: str = "1.1",
        ) -> Callable[[ModuleType], Any]:
    hs = [("Host", "example.com")] if headers is None else headers
    return lambda m: m.Request(method=method, target=target, headers=hs, http_version=version)


def resp(status: int = 200, headers: Any = (), reason: str = "",
         ) -> Callable[[ModuleType], Any]:
    cls = "InformationalResponse" if status < 200 else "Response"
    return lambda m: getattr(m, cls)(status_code=status, headers=list(headers), reason=reason)


def data(payload: bytes) -> Callable[[ModuleType], Any]:
    return lambda m: m.Data(data=payload)


def eom(headers: Any = ()) -> Callable[[ModuleType], Any]:
    return lambda m: m.EndOfMessage(headers=list(headers))


def closed() -> Callable[[ModuleType], Any]:
    return lambda m: m.ConnectionClosed()
