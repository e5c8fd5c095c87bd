"""Settings schema, sources and validation (being built; see issue 3)."""
