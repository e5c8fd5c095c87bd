# The mega-tutorial's application package: the app object, configured from the top-level config.
from flask import Flask

from config import Config

app = Flask(__name__)
app.config.from_object(Config)

from app import routes  # noqa: E402, F401 - the tutorial's circular import, on purpose
