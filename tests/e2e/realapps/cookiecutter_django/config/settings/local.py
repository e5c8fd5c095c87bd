# cookiecutter-django's local settings (DJANGO_SETTINGS_MODULE=config.settings.local).
import os

from .base import *  # noqa: F403

DEBUG = True
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "local-not-secret-at-all-local-not-secret-at-all")
ALLOWED_HOSTS = ["localhost", "0.0.0.0", "127.0.0.1"]
