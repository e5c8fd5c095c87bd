# The public API: h11's names and meanings, re-exported from the modules that own them.
"""treadle's sans-IO HTTP/1.1 engine: h11's public API, stricter and faster."""

from .connection import NEED_DATA, PAUSED, Connection
from .errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from .events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    InformationalResponse,
    Request,
    Response,
)
from .state import (
    CLIENT,
    CLOSED,
    DONE,
    ERROR,
    IDLE,
    MUST_CLOSE,
    SEND_BODY,
    SEND_RESPONSE,
    SERVER,
    SWITCHED_PROTOCOL,
)
from .state import MIGHT_SWITCH_PROTOCOL as MIGHT_SWITCH_PROTOCOL

__version__ = "0.1.0"
PRODUCT_ID = "treadle/" + __version__

# Exactly h11's __all__ (h11 also leaves MIGHT_SWITCH_PROTOCOL and PRODUCT_ID out of it,
# while offering both as attributes, as we do).
__all__ = (
    "Connection",
    "NEED_DATA",
    "PAUSED",
    "ConnectionClosed",
    "Data",
    "EndOfMessage",
    "Event",
    "InformationalResponse",
    "Request",
    "Response",
    "CLIENT",
    "CLOSED",
    "DONE",
    "ERROR",
    "IDLE",
    "MUST_CLOSE",
    "SEND_BODY",
    "SEND_RESPONSE",
    "SERVER",
    "SWITCHED_PROTOCOL",
    "ProtocolError",
    "LocalProtocolError",
    "RemoteProtocolError",
)
