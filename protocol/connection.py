# Connection: one HTTP/1.1 connection, either role, with h11's public API. It owns the
# receive buffer, the state machine, and the reader and writer for the current states;
# readers and writers are swapped only when a state changes.
from __future__ import annotations

from typing import Any, overload

from .errors import LocalProtocolError, RemoteProtocolError
from .events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    InformationalResponse,
    Request,
    Response,
)
from .headers import (
    PLAIN_FACTS,
    HeadFacts,
    facts_of_headers,
    get_comma_header,
    set_comma_header,
)
from .limits import Limits
from .readers import (
    END_OF_MESSAGE,
    NO_BODY,
    ChunkedReader,
    ContentLengthReader,
    ExpectNothing,
    Http10Reader,
    Reader,
    RequestHeadReader,
    ResponseHeadReader,
)
from .receivebuffer import ReceiveBuffer
from .sentinel import Sentinel
from .state import (
    CLIENT,
    CLOSED,
    DONE,
    ERROR,
    IDLE,
    MIGHT_SWITCH_PROTOCOL,
    MUST_CLOSE,
    QUICK_MISS,
    QUICK_STEP_GET,
    SEND_BODY,
    SEND_RESPONSE,
    SERVER,
    SWITCH_CONNECT,
    SWITCH_UPGRADE,
    SWITCHED_PROTOCOL,
    ConnectionState,
    quick_step,
)
from .writers import (
    BodyWriter,
    ChunkedWriter,
    ContentLengthWriter,
    Http10Writer,
    write_request,
    write_response,
)

__all__ = ["Connection", "NEED_DATA", "PAUSED"]

DEFAULT_MAX_INCOMPLETE_EVENT_SIZE = 16 * 1024


class NEED_DATA(Sentinel, metaclass=Sentinel):
    pass


class PAUSED(Sentinel, metaclass=Sentinel):
    pass


_CONTENT_LENGTH = "content-length"
_CHUNKED = "chunked"
_HTTP10 = "http/1.0"
_HEAD_WRITER = "head"  # marker: in this state we write a Request or a response head


def body_framing(
    request_method: bytes | None, event: Request | Response, facts: HeadFacts
) -> tuple[str, int]:
    """How the body after `event` is delimited (RFC 9112 6.3), as h11 decides it."""
    if type(event) is Response:
        status = event.status_code
        if (
            status == 204
            or status == 304
            or request_method == b"HEAD"
            or (request_method == b"CONNECT" and 200 <= status < 300)
        ):
            return (_CONTENT_LENGTH, 0)
    if facts.chunked:
        return (_CHUNKED, 0)
    if facts.content_length is not None:
        return (_CONTENT_LENGTH, facts.content_length)
    if type(event) is Request:
        return (_CONTENT_LENGTH, 0)
    return (_HTTP10, 0)


class Connection:
    """One HTTP/1.1 connection seen from `our_role` (CLIENT or SERVER), as in h11.

    The keyword limits bound what is received: the request (or status) line
    (`max_request_line_size`, -> 414), the number of header or trailer fields
    (`max_field_count`, -> 431), one field line (`max_field_size`, -> 431) and a whole
    head (`max_incomplete_event_size`, -> 431). 0 for the line or field size leaves only
    the head cap.
    """

    def __init__(
        self,
        our_role: type[Sentinel],
        max_incomplete_event_size: int = DEFAULT_MAX_INCOMPLETE_EVENT_SIZE,
        *,
        max_request_line_size: int = 8190,
        max_field_count: int = 100,
        max_field_size: int = 8190,
    ) -> None:
        if our_role not in (CLIENT, SERVER):
            raise ValueError(f"expected CLIENT or SERVER, not {our_role!r}")
        self._limits = Limits(
            max_request_line_size, max_field_count, max_field_size, max_incomplete_event_size
        )
        self._max_incomplete_event_size = max_incomplete_event_size
        self.our_role = our_role
        self.their_role: type[Sentinel] = SERVER if our_role is CLIENT else CLIENT
        self._cstate = ConnectionState()
        self._receive_buffer = ReceiveBuffer()
        self._receive_buffer_closed = False
        self.their_http_version: bytes | None = None
        self._request_method: bytes | None = None
        self.client_is_waiting_for_100_continue = False
        # Readers for head states are made once per connection and reused every cycle.
        self._head_readers: dict[type[Sentinel], Reader] = {}
        if our_role is SERVER:
            self._head_readers[IDLE] = RequestHeadReader(self._limits)
        else:
            self._head_readers[IDLE] = ResponseHeadReader(self._limits, "IDLE")
            self._head_readers[SEND_RESPONSE] = ResponseHeadReader(self._limits, "SEND_RESPONSE")
        for state in (DONE, MUST_CLOSE, CLOSED):
            self._head_readers[state] = ExpectNothing(repr(state))
        self._head_writers: dict[type[Sentinel], str] = {IDLE: _HEAD_WRITER}
        if our_role is SERVER:
            self._head_writers[SEND_RESPONSE] = _HEAD_WRITER
        self._writer: BodyWriter | str | None = self._writer_for(IDLE, None, PLAIN_FACTS)
        self._reader: Reader | None = self._head_readers[IDLE]

    # -- public state ----------------------------------------------------------------

    @property
    def states(self) -> dict[type[Sentinel], type[Sentinel]]:
        """{CLIENT: <client state>, SERVER: <server state>} (a copy)."""
        return dict(self._cstate.states)

    @property
    def our_state(self) -> type[Sentinel]:
        return self._cstate.states[self.our_role]

    @property
    def their_state(self) -> type[Sentinel]:
        return self._cstate.states[self.their_role]

    @property
    def they_are_waiting_for_100_continue(self) -> bool:
        return self.their_role is CLIENT and self.client_is_waiting_for_100_continue

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """(received bytes not yet turned into events, whether the peer closed)."""
        buf = self._receive_buffer
        if buf._pos == len(buf._data):  # empty, as after most requests: no copy, no call
            return (b"", self._receive_buffer_closed)
        return (bytes(buf), self._receive_buffer_closed)

    # -- the cycle -------------------------------------------------------------------

    def start_next_cycle(self) -> None:
        """Both sides DONE -> both IDLE, for the next request on this connection;
        otherwise LocalProtocolError."""
        states = self._cstate.states
        if states[CLIENT] is DONE and states[SERVER] is DONE:
            states[CLIENT] = states[SERVER] = IDLE
        else:
            self._cstate.start_next_cycle()  # raises the error
        self._request_method = None
        assert not self.client_is_waiting_for_100_continue
        self._writer = _HEAD_WRITER
        self._reader = self._head_readers[IDLE]

    def send_failed(self) -> None:
        """Tell the state machine the bytes it gave us could not be sent: our state
        becomes ERROR."""
        self._process_error(self.our_role)

    def _process_error(self, role: type[Sentinel]) -> None:
        states = self._cstate.states
        old = (states[CLIENT], states[SERVER])
        self._cstate.process_error(role)
        self._respond_to_state_changes(old, None, PLAIN_FACTS)

    def _process_event(
        self, role: type[Sentinel], event: Event, facts: HeadFacts
    ) -> None:
        """Run `event` (sent by `role`) through the state machine and update the flags,
        reader and writer. The plain steps of a kept-alive connection take a quick path
        with the same outcome (state.quick_transition)."""
        cstate = self._cstate
        states = cstate.states
        event_type = type(event)
        if event_type is Data and states[role] is SEND_BODY:
            if role is CLIENT:
                self.client_is_waiting_for_100_continue = False
            return  # Data changes no state
        step: Any = None
        if cstate.keep_alive and not cstate.pending_switch_proposals and (
            event_type is EndOfMessage
            or (
                (event_type is Request or event_type is Response)
                and (facts is PLAIN_FACTS or (not facts.close and not facts.upgrade))
                and event.http_version >= b"1.1"  # type: ignore[attr-defined]
                and (event_type is Response or event.method != b"CONNECT")  # type: ignore[attr-defined]
            )
            or event_type is ConnectionClosed
            or (event_type is InformationalResponse and event.status_code != 101)  # type: ignore[attr-defined]
        ):
            key = (self.our_role, role, event_type, states[CLIENT], states[SERVER])
            step = QUICK_STEP_GET(key, QUICK_MISS)
            if step is QUICK_MISS:
                step = quick_step(*key)
        if step is None:
            self._process_event_slow(role, event, facts)
            return
        states[CLIENT], states[SERVER], our_new, their_new = step
        if event_type is EndOfMessage:
            if role is CLIENT:
                self.client_is_waiting_for_100_continue = False
        elif event_type is Request:
            self._request_method = event.method  # type: ignore[attr-defined]
            if role is self.their_role:
                self.their_http_version = event.http_version  # type: ignore[attr-defined]
            if facts.expect_continue:
                self.client_is_waiting_for_100_continue = True
        elif event_type is not ConnectionClosed:  # a Response or InformationalResponse
            if role is self.their_role:
                self.their_http_version = event.http_version  # type: ignore[attr-defined]
            self.client_is_waiting_for_100_continue = False
        if our_new is not None:
            self._writer = (
                self._writer_for(our_new, event, facts) if our_new is SEND_BODY
                else self._head_writers.get(our_new)
            )
        if their_new is not None:
            self._reader = (
                self._body_reader(event, facts) if their_new is SEND_BODY
                else self._head_readers.get(their_new)
            )

    def _process_event_slow(
        self, role: type[Sentinel], event: Event, facts: HeadFacts
    ) -> None:
        cstate = self._cstate
        states = cstate.states
        old = (states[CLIENT], states[SERVER])
        event_type = type(event)
        switch: type[Sentinel] | None = None
        if event_type is Request:
            if role is CLIENT:
                if event.method == b"CONNECT":  # type: ignore[attr-defined]
                    cstate.process_client_switch_proposal(SWITCH_CONNECT)
                if facts.upgrade:
                    cstate.process_client_switch_proposal(SWITCH_UPGRADE)
        elif role is SERVER:
            if event_type is InformationalResponse:
                if event.status_code == 101:  # type: ignore[attr-defined]
                    switch = SWITCH_UPGRADE
            elif (
                event_type is Response
                and SWITCH_CONNECT in cstate.pending_switch_proposals
                and 200 <= event.status_code < 300  # type: ignore[attr-defined]
            ):
                switch = SWITCH_CONNECT
        cstate.process_event(role, event_type, switch)

        if event_type is Request:
            self._request_method = event.method  # type: ignore[attr-defined]
        if role is self.their_role and (
            event_type is Request or event_type is Response
            or event_type is InformationalResponse
        ):
            self.their_http_version = event.http_version  # type: ignore[attr-defined]
        if event_type is Request or event_type is Response:
            version: bytes = event.http_version  # type: ignore[attr-defined]
            if facts.close or version < b"1.1":
                cstate.process_keep_alive_disabled()
            if event_type is Request:
                if facts.expect_continue and version >= b"1.1":
                    self.client_is_waiting_for_100_continue = True
            else:
                self.client_is_waiting_for_100_continue = False
        elif event_type is InformationalResponse:
            self.client_is_waiting_for_100_continue = False
        elif role is CLIENT and (event_type is Data or event_type is EndOfMessage):
            self.client_is_waiting_for_100_continue = False
        self._respond_to_state_changes(old, event, facts)

    def _respond_to_state_changes(
        self, old: tuple[type[Sentinel], type[Sentinel]], event: Event | None,
        facts: HeadFacts,
    ) -> None:
        states = self._cstate.states
        if self.our_role is CLIENT:
            our_old, their_old = old
        else:
            their_old, our_old = old
        our_state = states[self.our_role]
        if our_state is not our_old:
            self._writer = self._writer_for(our_state, event, facts)
        their_state = states[self.their_role]
        if their_state is not their_old:
            if their_state is SEND_BODY:
                self._reader = self._body_reader(event, facts)
            else:
                self._reader = self._head_readers.get(their_state)

    def _writer_for(
        self, state: type[Sentinel], event: Event | None, facts: HeadFacts
    ) -> BodyWriter | str | None:
        if state is SEND_BODY:
            framing, length = body_framing(
                self._request_method, event, facts  # type: ignore[arg-type]
            )
            if framing is _CONTENT_LENGTH:
                return ContentLengthWriter(length)
            return ChunkedWriter() if framing is _CHUNKED else Http10Writer()
        if state is IDLE or (state is SEND_RESPONSE and self.our_role is SERVER):
            return _HEAD_WRITER
        return None

    def _body_reader(self, event: Event | None, facts: HeadFacts) -> Reader:
        if facts is PLAIN_FACTS and type(event) is Request:
            return NO_BODY  # what body_framing says: no length, no chunked coding
        framing, length = body_framing(
            self._request_method, event, facts  # type: ignore[arg-type]
        )
        if framing is _CONTENT_LENGTH:
            return ContentLengthReader(length) if length else NO_BODY
        if framing is _CHUNKED:
            return ChunkedReader(self._limits)
        return Http10Reader()

    # -- receiving -------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Add received bytes to the buffer; b"" means the peer closed (EOF).
        Parsing happens in next_event()."""
        if data:
            if self._receive_buffer_closed:
                raise RuntimeError("received close, then received more data?")
            buf = self._receive_buffer
            if buf._pos == len(buf._data) and type(data) is bytes:
                buf._data = data  # the common case, without the call: see ReceiveBuffer.feed
                buf._pos = 0
            else:
                buf.feed(data)
        else:
            self._receive_buffer_closed = True

    def next_event(self) -> Event | type[NEED_DATA] | type[PAUSED]:
        """The next event from the received bytes, NEED_DATA or PAUSED.

        Raises RemoteProtocolError (with `error_status_hint`) if the peer broke the
        protocol; the peer's state is then ERROR.
        """
        states = self._cstate.states
        their_state = states[self.their_role]
        if their_state is ERROR:
            raise RemoteProtocolError("Can't receive data when peer state is ERROR")
        buf = self._receive_buffer
        try:
            if their_state is DONE and buf:
                return PAUSED
            if their_state is MIGHT_SWITCH_PROTOCOL or their_state is SWITCHED_PROTOCOL:
                return PAUSED
            reader = self._reader
            if reader is NO_BODY:
                event: Event | None = END_OF_MESSAGE  # what NO_BODY returns, without the call
            else:
                assert reader is not None
                event = reader(buf)
            if event is None:
                if self._receive_buffer_closed and not buf:
                    event = reader.read_eof()
                else:
                    if len(buf._data) - buf._pos > self._max_incomplete_event_size:
                        raise RemoteProtocolError("Receive buffer too long", 431)
                    if self._receive_buffer_closed:
                        raise RemoteProtocolError("peer unexpectedly closed connection")
                    return NEED_DATA
            event_type = type(event)
            if event_type is Request or event_type is Response:
                facts: HeadFacts = reader.facts  # type: ignore[attr-defined]
            else:
                facts = PLAIN_FACTS
            self._process_event(self.their_role, event, facts)
            return event
        except BaseException as exc:
            self._process_error(self.their_role)
            if isinstance(exc, LocalProtocolError):
                exc._reraise_as_remote_protocol_error()
            raise

    # -- sending ---------------------------------------------------------------------

    @overload
    def send(self, event: ConnectionClosed) -> None: ...

    @overload
    def send(
        self, event: Request | InformationalResponse | Response | Data | EndOfMessage
    ) -> bytes: ...

    @overload
    def send(self, event: Event) -> bytes | None: ...

    def send(self, event: Event) -> bytes | None:
        """The bytes for `event` (None for ConnectionClosed), updating the state machine.

        Raises LocalProtocolError if HTTP/1.1 forbids sending it now; our state is then
        ERROR.
        """
        our_role = self.our_role
        states = self._cstate.states
        if states[our_role] is ERROR:
            raise LocalProtocolError("Can't send data when our state is ERROR")
        try:
            event_type = type(event)
            if event_type is Data:
                writer = self._writer
                self._process_event(our_role, event, PLAIN_FACTS)
                return writer.data(event.data)  # type: ignore[union-attr, attr-defined]
            if event_type is Response:
                response: Response = event  # type: ignore[assignment]
                facts = response.headers._facts
                # A known length on a kept-alive connection: nothing to clean up.
                if (
                    facts is None or facts.content_length is None or facts.chunked
                    or not self._cstate.keep_alive
                ):
                    response, facts = self._clean_up_response(response)
                self._process_event(our_role, response, facts)
                return write_response(response)
            if event_type is EndOfMessage:
                writer = self._writer
                self._process_event(our_role, event, PLAIN_FACTS)
                return writer.end(event.headers)  # type: ignore[union-attr, attr-defined]
            if event_type is Request:
                facts = facts_of_headers(event.headers)  # type: ignore[attr-defined]
                self._process_event(our_role, event, facts)
                return write_request(event)  # type: ignore[arg-type]
            self._process_event(our_role, event, PLAIN_FACTS)
            if event_type is ConnectionClosed:
                return None
            return write_response(event)  # type: ignore[arg-type]
        except BaseException:
            self._process_error(our_role)
            raise

    def send_with_data_passthrough(self, event: Event) -> list[Any] | None:
        """As send(), but a list of pieces; for Data it holds the very object given."""
        if type(event) is not Data:
            out = self.send(event)
            return None if out is None else [out]
        if self._cstate.states[self.our_role] is ERROR:
            raise LocalProtocolError("Can't send data when our state is ERROR")
        try:
            writer = self._writer
            self._process_event(self.our_role, event, PLAIN_FACTS)
            return writer.data_parts(event.data)  # type: ignore[union-attr]
        except BaseException:
            self._process_error(self.our_role)
            raise

    def _clean_up_response(self, response: Response) -> tuple[Response, HeadFacts]:
        """Framing and Connection headers fixed up as h11 does: unknown length -> chunked
        for HTTP/1.1 peers, close-delimited otherwise; `Connection: close` when the
        connection will close."""
        facts = facts_of_headers(response.headers)
        method = self._request_method
        if facts.content_length is not None and not facts.chunked:
            framing = _CONTENT_LENGTH  # whatever the status or method: nothing to fix
        else:
            framing = body_framing(b"GET" if method == b"HEAD" else method, response, facts)[0]
        headers = response.headers
        need_close = False
        changed = False
        if framing is not _CONTENT_LENGTH:
            headers = set_comma_header(headers, b"content-length", [])
            version = self.their_http_version
            if version is None or version < b"1.1":
                headers = set_comma_header(headers, b"transfer-encoding", [])
                if method != b"HEAD":
                    need_close = True
            else:
                headers = set_comma_header(headers, b"transfer-encoding", [b"chunked"])
            changed = True
        if not self._cstate.keep_alive or need_close:
            connection = set(get_comma_header(headers, b"connection"))
            connection.discard(b"keep-alive")
            connection.add(b"close")
            headers = set_comma_header(headers, b"connection", sorted(connection))
            changed = True
        if not changed:
            return response, facts
        cleaned = Response(
            headers=headers,
            status_code=response.status_code,
            http_version=response.http_version,
            reason=response.reason,
        )
        return cleaned, facts_of_headers(headers)
