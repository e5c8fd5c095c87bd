# "Did you mean ...?" for unknown flags, environment variables and file keys: one rule for the
# three. A guess is offered only when the name is plainly a slip for one setting: the same
# apart from case and '-'/'_', an abbreviation of exactly one name, or one or two typing
# errors away from exactly one name. Anything looser misleads: difflib's ratio took
# --timeout for --body-timeout and --workers for --worker-connections, which a gunicorn
# user would follow. `decoys` are names a guess must not steal from (gunicorn's settings,
# which get their own message): when the closest name is one of them, there is no guess.
from __future__ import annotations

from collections.abc import Iterable

__all__ = ["closest"]

_SHORTEST_GUESSED = 3  # -x is not a slip for -b


def _plain(name: str) -> str:
    return name.lstrip("-").lower().replace("-", "").replace("_", "")


def _edits(a: str, b: str, limit: int) -> int:
    """Typing errors between a and b (insert, delete, replace, swap two neighbours); any
    value above ``limit`` is reported as limit + 1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    row = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], before[j - 2] + 1)
        before, row = row, current
    return min(row[-1], limit + 1)


def _only(found: set[str], choices: set[str]) -> str | None:
    if len(found) != 1:
        return None
    (name,) = found
    return name if name in choices else None


def closest(word: str, choices: Iterable[str], decoys: Iterable[str] = ()) -> str | None:
    """The one name of ``choices`` that ``word`` is plainly a slip for, or None."""
    wanted = set(choices)
    names = wanted | set(decoys)
    plain = _plain(word)
    if len(plain) < _SHORTEST_GUESSED:
        return None
    by_plain: dict[str, set[str]] = {}
    for name in names:
        by_plain.setdefault(_plain(name), set()).add(name)
    if plain in by_plain:
        return _only(by_plain[plain], wanted)
    prefixed = {name for key, group in by_plain.items() if key.startswith(plain) for name in group}
    if prefixed:
        return _only(prefixed, wanted)
    limit = 1 if len(plain) <= 6 else 2
    distances = {key: _edits(plain, key, limit) for key in by_plain}
    best = min(distances.values(), default=limit + 1)
    if best > limit:
        return None
    return _only({name for key, d in distances.items() if d == best for name in by_plain[key]},
                 wanted)
