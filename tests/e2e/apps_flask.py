"""A real Flask application for the end-to-end tests (`tests.e2e.apps_flask:app`)."""

from __future__ import annotations

from flask import Flask, jsonify, request, stream_with_context

app = Flask(__name__)


@app.get("/hello/<name>")
def hello(name: str):
    return f"Hello, {name}!"


@app.post("/form")
def form():
    upload = request.files.get("file")
    return jsonify(
        fields=request.form.to_dict(),
        file=upload.read().decode() if upload else None,
        url=request.url,
        scheme=request.scheme,
        remote=request.remote_addr,
    )


@app.get("/stream")
def stream():
    def parts():
        for number in range(3):
            yield f"{number};"

    return app.response_class(stream_with_context(parts()), mimetype="text/plain")


@app.get("/fail")
def fail():
    raise RuntimeError("flask view failed")
