# The engine's version and the product token an application may put in Server or
# User-Agent (h11's PRODUCT_ID has the same use).
from __future__ import annotations

__version__ = "0.1.0"
PRODUCT_ID = "treadle/" + __version__
