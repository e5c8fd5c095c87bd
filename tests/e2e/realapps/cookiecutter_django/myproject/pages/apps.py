from django.apps import AppConfig


class PagesConfig(AppConfig):
    name = "myproject.pages"
    verbose_name = "Pages"
