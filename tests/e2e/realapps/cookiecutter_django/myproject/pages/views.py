from django.conf import settings
from django.http import JsonResponse

import config


def home(request):
    """Says which settings and which `config` package are live, as JSON."""
    return JsonResponse({
        "settings": settings.SETTINGS_MODULE,
        "config_package": config.__file__,
        "debug": settings.DEBUG,
        "secure": request.is_secure(),
        "host": request.get_host(),
    })
