# The two exceptions of the config package: what the user sees (ConfigError, one line naming
# the source) and what a validator raises (Invalid, turned into a ConfigError by the loader,
# which alone knows where the value came from).
from __future__ import annotations

__all__ = ["ConfigError", "Invalid", "show"]


class ConfigError(Exception):
    """A configuration or usage error: one line that names the source and what was expected.

    The command line prints it as ``treadle: error: <message>`` and exits with status 2.
    Several problems found in one pass (every unknown name of every source) travel together:
    ``problems`` holds each line, and ``details`` any text to show after them as it is.
    """

    def __init__(self, problem: str, *more: str, details: str = "") -> None:
        super().__init__("\n".join((problem, *more)))
        self.problems = (problem, *more)
        self.details = details


_UNSET: object = object()


class Invalid(ValueError):
    """Raised by a validator; the loader adds the source of the value.

    ``expected`` overrides the validator's own description (a list validator names the item
    type), ``given`` the offending value (one item of a list), ``detail`` says what exactly is
    wrong when the expected type alone does not.
    """

    def __init__(self, detail: str = "", *, expected: str = "", given: object = _UNSET) -> None:
        super().__init__(detail)
        self.detail = detail
        self.expected = expected
        self.given = given

    def describe(self, expected: str, given: object) -> str:
        """``expected X, got Y (detail)`` with this error's overrides applied."""
        shown = show(given if self.given is _UNSET else self.given)
        text = f"expected {self.expected or expected}, got {shown}"
        return f"{text} ({self.detail})" if self.detail else text


def show(value: object) -> str:
    """A short rendering of a value as the user wrote it (TOML spelling for booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(item) for item in value) + "]"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
