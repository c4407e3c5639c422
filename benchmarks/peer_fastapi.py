"""The peer users would pick instead: FastAPI on uvicorn serving the same SavedModels at TF
Serving's URL with the same JSON (``{"inputs": ...}`` -> ``{"outputs": ...}``), written the way
its tutorials write it (an async endpoint, the model called inline, a dict returned). Started by
``peers.py``; binds port 0 and prints the port on stdout.

    python benchmarks/peer_fastapi.py NAME=PATH [NAME=PATH ...]
"""

from __future__ import annotations

import os
import socket
import sys

import numpy as np
import tensorflow as tf
import uvicorn
from fastapi import FastAPI, Request

models = {}
for argument in sys.argv[1:]:
    name, path = argument.split("=", 1)
    models[name] = tf.saved_model.load(os.path.join(path, "1")).signatures["serving_default"]

app = FastAPI()


@app.post("/v1/models/{name}:predict")
async def predict(name: str, request: Request) -> dict:
    doc = await request.json()
    inputs = doc["inputs"]
    function = models[name]
    if not isinstance(inputs, dict):
        (key,) = function.structured_input_signature[1]
        inputs = {key: inputs}
    outputs = function(**{k: tf.constant(np.asarray(v, np.float32)) for k, v in inputs.items()})
    result = {k: v.numpy().tolist() for k, v in outputs.items()}
    return {"outputs": next(iter(result.values())) if len(result) == 1 else result}


if __name__ == "__main__":
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    print(sock.getsockname()[1], flush=True)
    # sockets=, not fd=: uvicorn opens an fd as a Unix socket, which skips TCP_NODELAY.
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])
