"""What the JupyterLab panel shows for one recorded server, ready to render.

The panel's TypeScript only lays out what this returns: versions with TF Serving's state (a
version that failed to load is ``END``, its load error beside it), labels grouped by version,
and a curl command per model, once with the token (for the clipboard) and once with
``$JUPYTER_TOKEN`` in its place (for the screen). The grouping and state rules are the
dashboard's (``client.traffic``).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from tfserve_magic.client.traffic import model_views
from tfserve_magic.lifecycle.registry import ServerRecord
from tfserve_magic.status import ServerDescription

__all__ = ["server_view", "shown_curl"]

_TOKEN_VARIABLE = '"Authorization: token $JUPYTER_TOKEN"'


def shown_curl(command: str, token: str) -> str:
    """``command`` with its token header replaced by one reading ``$JUPYTER_TOKEN``."""
    if not token:
        return command
    return command.replace(shlex.quote(f"Authorization: token {token}"), _TOKEN_VARIABLE)


def server_view(record: ServerRecord, status: ServerDescription | None, proxy_url: str,
                curls: Mapping[str, str], token: str) -> dict[str, Any]:
    """The panel's row for ``record``: the record's fields, liveness, its description as the
    server gave it (``status``) and ``model_views``."""
    models = []
    for view in model_views(status or ServerDescription()):
        command = curls.get(view.name)
        models.append({
            "name": view.name,
            "versions": [{"version": row.version, "state": row.state.name,
                          "labels": ", ".join(row.labels), "error": row.error}
                         for row in view.rows],
            "curl": None if command is None else {"command": command,
                                                  "shown": shown_curl(command, token)},
        })
    return {**record.public_json(), "owner": record.owner, "alive": status is not None,
            "proxy_url": proxy_url,
            "status": None if status is None else status.to_json(), "model_views": models}
