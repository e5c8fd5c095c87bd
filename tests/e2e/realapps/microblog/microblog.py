# The mega-tutorial's entry module: `flask run` (FLASK_APP=microblog.py) or `treadle microblog:app`.
from app import app  # noqa: F401
