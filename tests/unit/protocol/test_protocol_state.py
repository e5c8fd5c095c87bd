"""state.py: the same transitions, coupled rules and errors as h11's state machine, checked
by running random sequences of operations through both."""

from __future__ import annotations

from typing import Any

import h11
import h11._state as h11_state
import treadle.protocol.state as our_state
from hypothesis import given
from hypothesis import strategies as st
from test_protocol_properties import PROFILE

from treadle import protocol

EVENTS = ["Request", "InformationalResponse", "Response", "Data", "EndOfMessage",
          "ConnectionClosed"]
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("event"), st.sampled_from(["CLIENT", "SERVER"]),
                  st.sampled_from(EVENTS), st.sampled_from([None, "UPGRADE", "CONNECT"])),
        st.tuples(st.just("error"), st.sampled_from(["CLIENT", "SERVER"])),
        st.tuples(st.just("keep_alive_disabled")),
        st.tuples(st.just("proposal"), st.sampled_from(["UPGRADE", "CONNECT"])),
        st.tuples(st.just("cycle")),
    ),
    max_size=25,
)


def apply(module: Any, state_module: Any, ops: list[tuple[Any, ...]]) -> list[Any]:
    switches = {"UPGRADE": getattr(state_module, "_SWITCH_UPGRADE", None)
                or getattr(state_module, "SWITCH_UPGRADE", None),
                "CONNECT": getattr(state_module, "_SWITCH_CONNECT", None)
                or getattr(state_module, "SWITCH_CONNECT", None)}
    cstate = state_module.ConnectionState()
    trace: list[Any] = []
    for op in ops:
        try:
            if op[0] == "event":
                # Connection passes a switch only with a server's (Informational)Response.
                pairs = {("InformationalResponse", "UPGRADE"), ("Response", "CONNECT")}
                switch = (switches[op[3]] if op[1] == "SERVER" and (op[2], op[3]) in pairs
                          else None)
                cstate.process_event(getattr(module, op[1]), getattr(module, op[2]), switch)
            elif op[0] == "error":
                cstate.process_error(getattr(module, op[1]))
            elif op[0] == "keep_alive_disabled":
                cstate.process_keep_alive_disabled()
            elif op[0] == "proposal":
                cstate.process_client_switch_proposal(switches[op[1]])
            else:
                cstate.start_next_cycle()
            trace.append("ok")
        except module.LocalProtocolError as exc:
            trace.append(("error", str(exc)))
        except AttributeError:
            # h11 fails formatting its message for a tuple key (a switch event with no
            # transition); count it as an error with an unknown message.
            trace.append(("error", None))
        trace.append({repr(k): repr(v) for k, v in cstate.states.items()})
        trace.append(cstate.keep_alive)
    return trace


@PROFILE
@given(OPS)
def test_state_machine_matches_h11(ops: list[tuple[Any, ...]]) -> None:
    ours = apply(protocol, our_state, ops)
    theirs = apply(h11, h11_state, ops)
    assert None not in [t[1] for t in ours if isinstance(t, tuple)]
    theirs = [o if isinstance(t, tuple) and t[1] is None else t for o, t in zip(
        ours, theirs, strict=True)]
    assert ours == theirs


def _named(tables: Any) -> Any:
    def key(k: Any) -> Any:
        if isinstance(k, tuple):
            return tuple(part.__name__.lstrip("_") for part in k)
        return k.__name__

    return {role.__name__: {state.__name__: {key(k): v.__name__ for k, v in table.items()}
                            for state, table in states.items()}
            for role, states in tables.items()}


def test_transition_tables_are_h11s() -> None:
    assert _named(our_state.EVENT_TRIGGERED_TRANSITIONS) == _named(
        h11_state.EVENT_TRIGGERED_TRANSITIONS)
    ours = {(a.__name__, b.__name__): {r.__name__: s.__name__ for r, s in c.items()}
            for (a, b), c in our_state.STATE_TRIGGERED_TRANSITIONS.items()}
    theirs = {(a.__name__, b.__name__): {r.__name__: s.__name__ for r, s in c.items()}
              for (a, b), c in h11_state.STATE_TRIGGERED_TRANSITIONS.items()}
    assert ours == theirs


def test_missing_transition_names_role_state_and_event() -> None:
    cstate = our_state.ConnectionState()
    try:
        cstate.process_event(protocol.CLIENT, protocol.Data, None)
    except protocol.LocalProtocolError as exc:
        assert str(exc) == "can't handle event type Data when role=CLIENT and state=IDLE"
    else:
        raise AssertionError("no error")
