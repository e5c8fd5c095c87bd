# A small Falcon application: a query string, a JSON POST body, a path parameter.
import falcon


class Hello:
    def on_get(self, req, resp):
        resp.media = {"framework": "falcon", "hello": req.get_param("name", default="world")}


class Echo:
    def on_post(self, req, resp):
        resp.media = {"received": req.get_media(), "bytes": req.content_length}
        resp.status = falcon.HTTP_201


class Item:
    def on_get(self, req, resp, item_id):
        if item_id != 1:
            raise falcon.HTTPNotFound()
        resp.media = {"id": item_id, "name": "treadle"}


app = falcon.App()
app.add_route("/hello", Hello())
app.add_route("/echo", Echo())
app.add_route("/items/{item_id:int}", Item())
