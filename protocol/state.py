# Roles, states and the state machine of one HTTP/1.1 connection, as tables: the same
# states, transitions and coupled rules (keep-alive, protocol switch, shutdown) as h11.
from __future__ import annotations

from typing import Union

from .errors import LocalProtocolError
from .events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    InformationalResponse,
    Request,
    Response,
)
from .sentinel import Sentinel

__all__ = [
    "CLIENT", "SERVER", "IDLE", "SEND_RESPONSE", "SEND_BODY", "DONE", "MUST_CLOSE",
    "CLOSED", "MIGHT_SWITCH_PROTOCOL", "SWITCHED_PROTOCOL", "ERROR",
]


class CLIENT(Sentinel, metaclass=Sentinel):
    pass


class SERVER(Sentinel, metaclass=Sentinel):
    pass


class IDLE(Sentinel, metaclass=Sentinel):
    pass


class SEND_RESPONSE(Sentinel, metaclass=Sentinel):
    pass


class SEND_BODY(Sentinel, metaclass=Sentinel):
    pass


class DONE(Sentinel, metaclass=Sentinel):
    pass


class MUST_CLOSE(Sentinel, metaclass=Sentinel):
    pass


class CLOSED(Sentinel, metaclass=Sentinel):
    pass


class ERROR(Sentinel, metaclass=Sentinel):
    pass


class MIGHT_SWITCH_PROTOCOL(Sentinel, metaclass=Sentinel):
    pass


class SWITCHED_PROTOCOL(Sentinel, metaclass=Sentinel):
    pass


class SWITCH_UPGRADE(Sentinel, metaclass=Sentinel):
    """The client proposed Upgrade; a 101 InformationalResponse accepts."""


class SWITCH_CONNECT(Sentinel, metaclass=Sentinel):
    """The client sent CONNECT; a 2xx Response accepts."""


Role = type[Sentinel]
State = type[Sentinel]
EventKey = Union[type[Event], tuple[type[Event], type[Sentinel]]]  # noqa: UP007

# {role: {state: {event type (or (event type, switch)): next state}}}. A missing entry
# is a protocol error naming role, state and event.
EVENT_TRIGGERED_TRANSITIONS: dict[Role, dict[State, dict[EventKey, State]]] = {
    CLIENT: {
        IDLE: {Request: SEND_BODY, ConnectionClosed: CLOSED},
        SEND_BODY: {Data: SEND_BODY, EndOfMessage: DONE},
        DONE: {ConnectionClosed: CLOSED},
        MUST_CLOSE: {ConnectionClosed: CLOSED},
        CLOSED: {ConnectionClosed: CLOSED},
        MIGHT_SWITCH_PROTOCOL: {},
        SWITCHED_PROTOCOL: {},
        ERROR: {},
    },
    SERVER: {
        IDLE: {
            ConnectionClosed: CLOSED,
            Response: SEND_BODY,
            # The server's state moves when the *client* sends its Request:
            (Request, CLIENT): SEND_RESPONSE,
        },
        SEND_RESPONSE: {
            InformationalResponse: SEND_RESPONSE,
            Response: SEND_BODY,
            (InformationalResponse, SWITCH_UPGRADE): SWITCHED_PROTOCOL,
            (Response, SWITCH_CONNECT): SWITCHED_PROTOCOL,
        },
        SEND_BODY: {Data: SEND_BODY, EndOfMessage: DONE},
        DONE: {ConnectionClosed: CLOSED},
        MUST_CLOSE: {ConnectionClosed: CLOSED},
        CLOSED: {ConnectionClosed: CLOSED},
        SWITCHED_PROTOCOL: {},
        ERROR: {},
    },
}

# {(client state, server state): {role: new state}}: transitions caused by the pair.
STATE_TRIGGERED_TRANSITIONS: dict[tuple[State, State], dict[Role, State]] = {
    (MIGHT_SWITCH_PROTOCOL, SWITCHED_PROTOCOL): {CLIENT: SWITCHED_PROTOCOL},
    (CLOSED, DONE): {SERVER: MUST_CLOSE},
    (CLOSED, IDLE): {SERVER: MUST_CLOSE},
    (ERROR, DONE): {SERVER: MUST_CLOSE},
    (DONE, CLOSED): {CLIENT: MUST_CLOSE},
    (IDLE, CLOSED): {CLIENT: MUST_CLOSE},
    (DONE, ERROR): {CLIENT: MUST_CLOSE},
}


class ConnectionState:
    """Both roles' states plus keep-alive and pending switch proposals."""

    __slots__ = ("keep_alive", "pending_switch_proposals", "states")

    def __init__(self) -> None:
        self.keep_alive = True
        self.pending_switch_proposals: set[type[Sentinel]] = set()
        self.states: dict[Role, State] = {CLIENT: IDLE, SERVER: IDLE}

    def process_error(self, role: Role) -> None:
        self.states[role] = ERROR
        self._fire_state_triggered_transitions()

    def process_keep_alive_disabled(self) -> None:
        self.keep_alive = False
        self._fire_state_triggered_transitions()

    def process_client_switch_proposal(self, switch_event: type[Sentinel]) -> None:
        self.pending_switch_proposals.add(switch_event)
        self._fire_state_triggered_transitions()

    def process_event(
        self, role: Role, event_type: type[Event], server_switch_event: type[Sentinel] | None
    ) -> None:
        key: EventKey = event_type
        if server_switch_event is not None:
            if server_switch_event not in self.pending_switch_proposals:
                raise LocalProtocolError(
                    "Received server _SWITCH_UPGRADE event without a pending proposal"
                )
            key = (event_type, server_switch_event)
        elif event_type is Response and self.pending_switch_proposals:
            self.pending_switch_proposals = set()
        self._fire_event_triggered_transitions(role, key)
        if event_type is Request:
            self._fire_event_triggered_transitions(SERVER, (Request, CLIENT))
        self._fire_state_triggered_transitions()

    def _fire_event_triggered_transitions(self, role: Role, key: EventKey) -> None:
        state = self.states[role]
        new_state = EVENT_TRIGGERED_TRANSITIONS[role][state].get(key)
        if new_state is None:
            event_type = key[0] if isinstance(key, tuple) else key
            raise LocalProtocolError(
                f"can't handle event type {event_type.__name__} when role={role} "
                f"and state={state}"
            )
        self.states[role] = new_state

    def _fire_state_triggered_transitions(self) -> None:
        states = self.states
        while True:
            client, server = start = (states[CLIENT], states[SERVER])
            # A switch proposal wins over keep-alive: DONE -> MIGHT_SWITCH_PROTOCOL first.
            if self.pending_switch_proposals:
                if client is DONE:
                    client = MIGHT_SWITCH_PROTOCOL
            elif client is MIGHT_SWITCH_PROTOCOL:
                client = DONE
            if not self.keep_alive:
                if client is DONE:
                    client = MUST_CLOSE
                if server is DONE:
                    server = MUST_CLOSE
            changes = STATE_TRIGGERED_TRANSITIONS.get((client, server))
            if changes is not None:
                client = changes.get(CLIENT, client)
                server = changes.get(SERVER, server)
            if (client, server) == start:
                return
            states[CLIENT] = client
            states[SERVER] = server

    def start_next_cycle(self) -> None:
        if self.states[CLIENT] is not DONE or self.states[SERVER] is not DONE:
            raise LocalProtocolError(f"not in a reusable state. self.states={self.states}")
        self.states[CLIENT] = IDLE
        self.states[SERVER] = IDLE


# The plain steps of a connection (keep-alive on, no switch proposed) are the same every
# cycle: their outcome is taken once from ConnectionState and remembered (quick_step), so
# the table stays the only source of truth.
QUICK_MISS = object()


def quick_transition(
    role: Role, event_type: type[Event], client: State, server: State
) -> tuple[State, State] | None:
    """(client, server) states after `role` sends an `event_type` that proposes no switch
    and keeps the connection alive, from states (client, server) of a connection with
    keep-alive on and no switch pending; None where that is a protocol error."""
    scratch = ConnectionState()
    scratch.states = {CLIENT: client, SERVER: server}
    try:
        scratch.process_event(role, event_type, None)
    except LocalProtocolError:
        return None
    return (scratch.states[CLIENT], scratch.states[SERVER])


# quick_transition's outcome as a connection uses it, keyed also by the connection's own
# role, with the states that changed for us and for the peer picked out, so the quick
# path does not sort the pair out every time. A plain dict: get/set are atomic, and it
# holds at most 2 x 2 roles x 6 events x the state pairs.
Step = tuple[State, State, Union[State, None], Union[State, None]]  # noqa: UP007
_STEPS: dict[tuple[Role, Role, type[Event], State, State], Step | None] = {}
QUICK_STEP_GET = _STEPS.get


def quick_step(
    our_role: Role, role: Role, event_type: type[Event], client: State, server: State
) -> Step | None:
    """(new client state, new server state, our new state or None if ours is unchanged,
    the peer's likewise), or None: as quick_transition, seen from `our_role`."""
    new = quick_transition(role, event_type, client, server)
    step: Step | None = None
    if new is not None:
        new_client, new_server = new
        if our_role is SERVER:
            ours, theirs = (server, new_server), (client, new_client)
        else:
            ours, theirs = (client, new_client), (server, new_server)
        step = (
            new_client, new_server,
            ours[1] if ours[1] is not ours[0] else None,
            theirs[1] if theirs[1] is not theirs[0] else None,
        )
    _STEPS[(our_role, role, event_type, client, server)] = step
    return step
