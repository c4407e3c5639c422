"""The ceiling row: a Tornado handler on the server's own event loop (uvloop when installed)
answering a constant body at TF Serving's URL without touching a model, parsing or metrics.
Started by ``peers.py``; binds port 0 and prints the port on stdout."""

from __future__ import annotations

import asyncio

import tornado.httpserver
import tornado.netutil
import tornado.web

from tfserve_magic.serving.process import loop

BODY = b'{"outputs": [3.0]}'


class Constant(tornado.web.RequestHandler):
    def post(self, _name: str) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(BODY)


async def main() -> None:
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(
        tornado.web.Application([(r"/v1/models/([^/:]+):predict", Constant)]))
    server.add_sockets(sockets)
    print(sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    loop.run(main())
