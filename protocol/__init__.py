"""Sans-IO HTTP/1.1 engine with the public API of h11 (being built; see issue 2)."""
