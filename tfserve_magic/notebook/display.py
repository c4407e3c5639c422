"""Pure rendering of launcher and client results to short, readable text (and a little HTML).

No I/O and no IPython: the magics print what these functions return.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tfserve_magic.lifecycle.launcher import (
    Failed,
    Launched,
    Reused,
    ServerInfo,
    StartResult,
    TimedOut,
    log_section,
)
from tfserve_magic.lifecycle.registry import ServerRecord
from tfserve_magic.lifecycle.spare import SpareInfo
from tfserve_magic.status import ServerDescription

__all__ = [
    "dtype_name",
    "links_bundle",
    "render_prediction",
    "render_servers",
    "render_signatures",
    "render_spare",
    "render_start",
    "render_status",
    "render_urls",
    "shape_text",
    "urls_html",
]


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def render_start(result: StartResult) -> str:
    if isinstance(result, Launched):
        h = result.handle
        grpc = f" (gRPC {h.grpc_target})" if h.grpc_target else ""
        started = (f"Started server {h.name} (pid {h.record.pid}) at {h.url}{grpc} in "
                   f"{result.seconds:.1f} s, serving {', '.join(h.models)}.")
        return "\n".join((started, *result.notes))
    if isinstance(result, Reused):
        h = result.handle
        return (f"Reusing server {h.name} (pid {h.record.pid}) at {h.url}, "
                f"serving {', '.join(h.models)}.")
    if isinstance(result, Failed):
        text = f"Could not start server {result.name}: {result.message}"
    else:
        assert isinstance(result, TimedOut)
        text = (f"Server {result.name} was not ready within {result.seconds:.0f} s "
                "(raise --timeout for large models); it was stopped.")
    return text + log_section(result)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip()
             for row in [header, *rows]]
    return "\n".join(lines)


def _kind(record: ServerRecord) -> str:
    if record.remote:
        return f"remote {record.url}"
    return "detached" if record.detached else ""


def _grpc(record: ServerRecord) -> str:
    return record.grpc_target or str(record.grpc_port or "-")  # a remote's is host:port


def _owner(record: ServerRecord) -> str:
    """Whose a server is, seen from this kernel."""
    if record.owner_pid == os.getpid() and not record.detached:
        return "this notebook" if record.owner_notebook else "this kernel"
    return record.owner or "-"


def render_servers(infos: Sequence[ServerInfo]) -> str:
    if not infos:
        return "No servers. Start one with %tfserve start MODEL_DIR."
    rows = [(i.record.name, "-" if i.record.remote else str(i.record.pid),
             str(i.record.rest_api_port), _grpc(i.record), ", ".join(i.models),
             _duration(i.uptime), "alive" if i.alive else "dead", _owner(i.record),
             "" if i.record.detached else _kind(i.record)) for i in infos]
    return _table(("NAME", "PID", "PORT", "GRPC", "MODELS", "UPTIME", "STATE", "OWNER", ""), rows)


def render_spare(warm: SpareInfo) -> str:
    """The kernel's warm spare server process (``%tfserve list``)."""
    return (f"Warm spare (the next start adopts it): pid {warm.pid}, {warm.rss_mb:.0f} MB "
            f"resident, {warm.private_mb:.0f} MB its own (the rest is TensorFlow's library, "
            "shared with other TensorFlow processes). %config TFServeMagics.warm_spare = False "
            "turns it off.")


def render_status(description: ServerDescription, model: str | None = None) -> str:
    """One server's models (contract 2): versions, states, labels and load errors."""
    blocks = []
    for entry in description.models:
        if model and entry.name != model:
            continue
        by_version: dict[int, list[str]] = {}
        for label, version in entry.labels.items():
            by_version.setdefault(version, []).append(label)
        rows = [(str(v.version), v.state.name, ", ".join(sorted(by_version.get(v.version, []))),
                 v.error) for v in entry.versions]
        head = f"{entry.name}  ({entry.policy}; {entry.base_path})"
        body = _table(("VERSION", "STATE", "LABELS", "ERROR"), rows) if rows else \
            "  no versions yet"
        blocks.append(head + "\n" + body)
    if not blocks:
        return f"No model named {model}." if model else "No models."
    return "\n\n".join(blocks)


def shape_text(info: Mapping[str, Any]) -> str:
    """A signature tensor's shape as everywhere in the notebook: ``[None, 64]``, ``[]`` for a
    scalar, ``unknown rank`` when TF does not know it."""
    shape = info.get("tensor_shape", {})
    if shape.get("unknown_rank"):
        return "unknown rank"
    dims = ["None" if int(d.get("size", -1)) < 0 else str(d["size"]) for d in shape.get("dim", [])]
    return "[" + ", ".join(dims) + "]"


# TF Serving's enum names whose lower-case form is not the dtype's own name (tf.float32 etc.).
_DTYPE_NAMES = {"float": "float32", "double": "float64", "half": "float16", "complex": "complex64"}


def dtype_name(dtype: str) -> str:
    """``DT_FLOAT`` -> ``float32``: TensorFlow's (and numpy's) name for a metadata dtype."""
    name = dtype.removeprefix("DT_").lower()
    return _DTYPE_NAMES.get(name, name)


def render_signatures(signatures: Mapping[str, Any]) -> str:
    blocks = []
    for name in sorted(signatures):
        if name.startswith("__"):
            continue
        signature = signatures[name]
        lines = [f"{name}  [{signature.get('method_name', '')}]"]
        for kind in ("inputs", "outputs"):
            for key, info in sorted(signature.get(kind, {}).items()):
                arrow = "in " if kind == "inputs" else "out"
                dtype = dtype_name(info.get("dtype", ""))
                lines.append(f"  {arrow} {key}: {dtype} {shape_text(info)}")
        blocks.append("\n".join(lines))
    return "\n".join(blocks) or "No signatures."


def render_prediction(prediction: Any, limit: int = 6) -> str:
    def one(array: Any) -> str:
        array = np.asarray(array)
        with np.printoptions(threshold=limit * 4, edgeitems=min(3, limit), precision=5,
                             suppress=True):
            text = np.array2string(array, separator=", ")
        return f"{text}  {array.dtype}{list(array.shape)}"

    if isinstance(prediction, Mapping):
        return "\n".join(f"{k}: {one(v)}" for k, v in prediction.items())
    return one(prediction)


def render_urls(urls: Sequence[tuple[str, str]]) -> str:
    return "\n".join(f"{kind}: {url}" for kind, url in urls)


_ON_THIS_HOST = "on the host and port this notebook's page uses"


def urls_html(urls: Sequence[tuple[str, str]]) -> str:
    """Links; a path without a host (through Jupyter) resolves against the page's own host."""
    items = "".join(f'<li>{html.escape(kind)}: <a href="{html.escape(url)}" target="_blank">'
                    f"{html.escape(url)}</a>"
                    + (f" <small>({_ON_THIS_HOST})</small>" if url.startswith("/") else "")
                    + "</li>" for kind, url in urls)
    return f"<ul>{items}</ul>"


def links_bundle(urls: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The links as HTML (clickable, a path resolved by the browser) and as text (a path said
    to be one: the kernel cannot know the host the browser uses)."""
    text = "\n".join(f"{kind}: {url}" + (f" ({_ON_THIS_HOST})" if url.startswith("/") else "")
                     for kind, url in urls)
    return {"text/plain": text, "text/html": urls_html(urls)}
