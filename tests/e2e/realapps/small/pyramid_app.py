# A small Pyramid application: a query string, a JSON POST body, a path parameter.
from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPNotFound


def hello(request):
    return {"framework": "pyramid", "hello": request.params.get("name", "world")}


def echo(request):
    request.response.status_code = 201
    return {"received": request.json_body, "bytes": request.content_length}


def item(request):
    if request.matchdict["item_id"] != "1":
        raise HTTPNotFound()
    return {"id": 1, "name": "treadle"}


with Configurator() as config:
    config.add_route("hello", "/hello")
    config.add_route("echo", "/echo", request_method="POST")
    config.add_route("item", "/items/{item_id}")
    config.add_view(hello, route_name="hello", renderer="json")
    config.add_view(echo, route_name="echo", renderer="json")
    config.add_view(item, route_name="item", renderer="json")
    app = config.make_wsgi_app()
