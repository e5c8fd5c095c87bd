"""A Flask application served by treadle: `treadle examples.flask_app:app`.

Flask is a WSGI framework, so treadle serves it as is: no adapter, no extra settings.
(`pip install flask` first.)
"""

from flask import Flask, jsonify, request

app = Flask(__name__)

ITEMS = {1: "anvil", 2: "treadle", 3: "spindle"}


@app.get("/")
def index():
    return "Hello from Flask on treadle!\n"


@app.get("/items/<int:item_id>")
def item(item_id: int):
    if item_id not in ITEMS:
        return jsonify(error="no such item"), 404
    return jsonify(id=item_id, name=ITEMS[item_id])


@app.post("/echo")
def echo():
    # request.get_json() reads wsgi.input; treadle hands it the body as it arrives.
    return jsonify(received=request.get_json(), scheme=request.scheme)
