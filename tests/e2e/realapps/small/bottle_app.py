# A small Bottle application: a query string, a JSON POST body, a path parameter.
import bottle

app = bottle.Bottle()


@app.get("/hello")
def hello():
    # Attribute access decodes UTF-8; item access would give Bottle's latin-1 "native" string.
    return {"framework": "bottle", "hello": bottle.request.query.name or "world"}


@app.post("/echo")
def echo():
    bottle.response.status = 201
    return {"received": bottle.request.json, "bytes": bottle.request.content_length}


@app.get("/items/<item_id:int>")
def item(item_id):
    if item_id != 1:
        bottle.abort(404, "no such item")
    return {"id": item_id, "name": "treadle"}
