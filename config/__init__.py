"""Settings for treadle: one declarative schema, four sources, a frozen typed result.

    from treadle.config import load
    cfg = load(["--threads", "4", "app:application"], os.environ, os.getcwd())
    cfg.threads, cfg.sources["threads"]   # 4, "command line --threads"

Sources, lowest to highest: defaults, a TOML file, TREADLE_<NAME> environment variables, the
command line. config/ is data and validation only: it imports nothing else of treadle's.
"""

from .checks import check_paths
from .cli import build_parser
from .errors import ConfigError
from .model import Config
from .reference import settings_markdown
from .render import to_toml
from .schema import SETTINGS, Setting
from .sources import load

__all__ = [
    "SETTINGS",
    "Config",
    "ConfigError",
    "Setting",
    "build_parser",
    "check_paths",
    "load",
    "settings_markdown",
    "to_toml",
]
