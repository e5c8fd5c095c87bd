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
    MIGHT_SWITCH_PROTOCOL,
    MUST_CLOSE,
    SEND_BODY,
    SEND_RESPONSE,
    SERVER,
    SWITCHED_PROTOCOL,
)
from .version import PRODUCT_ID
from .version import __version__ as __version__

# h11's public names: its __all__ plus MIGHT_SWITCH_PROTOCOL and PRODUCT_ID, which h11
# documents and exports but leaves out of its own __all__.
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
    "MIGHT_SWITCH_PROTOCOL",
    "ProtocolError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "PRODUCT_ID",
)
