"""Finding recorded servers: every one with its liveness, one by name or port, the one that
serves a model, a server's log. A record counts as alive only when its port answers with its
pid (``registry.probe``). A name means this kernel's own server first (the same name in another
notebook is that notebook's). No TensorFlow import.
"""

from __future__ import annotations

import os
import time

from tfserve_magic.lifecycle import registry
from tfserve_magic.lifecycle.handle import ServerHandle, ServerInfo, log_tail
from tfserve_magic.lifecycle.refusals import AmbiguousName, NotOurServer, UnknownServer

__all__ = ["find", "find_serving", "list_servers", "logs"]


def list_servers() -> list[ServerInfo]:
    """Every server this user started, from any kernel, alive or not."""
    infos = []
    for record in registry.read_records():
        description = registry.probe(record)
        models = description.model_names if description else record.models
        infos.append(ServerInfo(record, description is not None,
                                max(0.0, time.time() - record.started_at), models, description))
    return infos


def find(name: str | None = None) -> ServerHandle:
    """The live server ``name`` (or the only live one)."""
    live = [i for i in list_servers() if i.alive]
    if name is not None:
        mine = [i for i in live if i.record.owner_pid == os.getpid()
                and name in (i.record.name, i.record.requested_name)]
        live = mine or [i for i in live if name in (i.record.name, str(i.record.rest_api_port))]
        if not live:
            raise UnknownServer(f"no running server named {name} (see %tfserve list)")
    elif len(live) != 1:
        raise AmbiguousName("name the server: " + (", ".join(i.record.name for i in live)
                                                or "none is running (%tfserve start ...)"))
    return ServerHandle(live[0].record)


def find_serving(model: str, server: str | None = None) -> ServerHandle:
    """The live server that serves ``model`` (a server name is accepted too); ``server`` names
    it when several do. Never picks one of several silently."""
    if server is not None:
        handle = find(server)
        if model not in handle.models and model != handle.name:
            raise UnknownServer(f"server {handle.name} does not serve a model named {model} "
                             f"(it serves {', '.join(handle.models) or 'nothing'})")
        return handle
    live = [i for i in list_servers() if i.alive]
    matches = [i for i in live if model in i.models] or [i for i in live if i.record.name == model]
    if not matches:
        raise UnknownServer(f"no running server serves a model named {model} (see %tfserve list)")
    mine = [i for i in matches if i.record.owner_pid == os.getpid()]
    if len(matches) > 1 and len(mine) == 1:
        return ServerHandle(mine[0].record)  # this notebook's own, beside other notebooks'
    if len(matches) > 1:
        names = ", ".join(f"{i.record.name} ({i.record.url})" for i in matches)
        raise AmbiguousName(f"{len(matches)} running servers serve a model named {model}: {names}. "
                         "Say which one with --server NAME (server=NAME in Python).")
    return ServerHandle(matches[0].record)


def logs(name: str, lines: int = 50) -> str:
    """The last ``lines`` lines of the log of the server ``name`` started."""
    record = registry.resolve(name)
    if record is None:
        raise UnknownServer(f"no server named {name}")
    if record.remote:
        raise NotOurServer(f"{name} is a remote server ({record.url}): its log is where it runs")
    return log_tail(record.log_file, lines)
