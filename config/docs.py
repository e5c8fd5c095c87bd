# `python -m treadle.config.docs [PATH]` writes the settings reference (default: docs/settings.md of
# this checkout) and, without PATH, also the generated table of docs/gunicorn.md. Kept out of
# config/__init__ so running it does not import it twice.
from __future__ import annotations

import sys
from pathlib import Path

from .reference import DOCS_PATH, GUNICORN_DOCS_PATH, settings_markdown, with_gunicorn_table


def main(argv: list[str]) -> int:
    """Write the reference to ``argv[0]`` (default: docs/settings.md of this checkout)."""
    target = Path(argv[0]) if argv else DOCS_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(settings_markdown(), encoding="utf-8")
    print(f"wrote {target}")
    if not argv:
        text = GUNICORN_DOCS_PATH.read_text(encoding="utf-8")
        GUNICORN_DOCS_PATH.write_text(with_gunicorn_table(text), encoding="utf-8")
        print(f"wrote {GUNICORN_DOCS_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
