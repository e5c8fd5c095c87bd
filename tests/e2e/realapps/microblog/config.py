# The Flask mega-tutorial's configuration module, at the top of the project.
import os


class Config:
    SECRET_KEY = os.environ.get('SECRET_KEY') or 'you-will-never-guess'
