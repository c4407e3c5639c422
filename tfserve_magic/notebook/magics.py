"""``%tfserve`` and ``%%predict``: parse arguments, call the launcher or the client, print.

No business logic lives here: processes are the launcher's, requests the client's, text the
display module's. Errors a user can cause are printed as one clear message (TF Serving's own for
failed requests), never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import IPython.display
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from traitlets import Bool, observe

from tfserve_magic.client import ClientTls, ServingError
from tfserve_magic.errors import TFServeError
from tfserve_magic.lifecycle import launcher, spare
from tfserve_magic.notebook import defaults, display
from tfserve_magic.status import ServerDescription

__all__ = ["TFServeMagics", "register"]


class _CellError(TFServeError):
    """A %%predict cell that holds no data."""


class _UsageProblem(Exception):
    """Bad arguments: the message is a short usage text."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageProblem(f"{self.format_usage().strip()}\n{self.prog}: error: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        raise _UsageProblem(message or "")  # --help lands here after printing


def _build_parser() -> _Parser:
    parser = _Parser(prog="%tfserve", description="Serve TensorFlow models from this notebook "
                     "with a TensorFlow-Serving-compatible REST and gRPC server.",
                     epilog="Send data to a served model with the cell magic %%predict MODEL "
                     "(the cell: an array, a list, a dict of arrays or JSON); %%predict --help "
                     "lists its options. %tfserve COMMAND --help tells about one command.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    add = commands.add_parser

    def command(name: str, help: str, **kwargs: Any) -> argparse.ArgumentParser:
        kwargs.setdefault("description", help[0].upper() + help[1:] + ".")
        return add(name, help=help, **kwargs)

    start = command("start", help="serve a model folder or a models.config",
                    description="Serve MODEL_DIR (a base path holding version folders 1/, 2/, "
                    "...) or --config models.config. Extra --flag=value arguments go to the "
                    "server unchanged.")
    start.add_argument("model_dir", nargs="?", help="base path holding numeric version folders")
    start.add_argument("--config", help="a models.config (TF Serving text format)")
    start.add_argument("--name", help="model and server name (default: the folder's name)")
    start.add_argument("--port", type=int, default=0, help="REST port (default: a free one)")
    start.add_argument("--grpc-port", type=int, default=0,
                       help="gRPC port, TF Serving's --port (default: a free one)")
    start.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    start.add_argument("--gpu", help="GPUs to use: 'none', or indices such as 0 or 0,1")
    start.add_argument("--gpu-memory-fraction", type=float, help="hard GPU memory share, 0..1")
    start.add_argument("--poll", type=float, default=None,
                       help="seconds between checks for new versions and config changes "
                       "(default 1; 0: only on %%tfserve reload and push)")
    start.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for start")
    start.add_argument("--detach", action="store_true",
                       help="keep serving after this kernel exits")
    start.add_argument("--verbose", action="store_true",
                       help="log every request and TensorFlow's own start-up messages")
    start.add_argument("--batching", action="store_true",
                       help="batch concurrent requests into one model call (TF Serving's "
                       "batching; parameters written beside the models.config)")
    _tls_arguments(start, "a server started with --ssl_config_file (and --rest_api_ssl)")

    stop = command("stop", help="stop a server (or --all)")
    stop.add_argument("name", nargs="?")
    stop.add_argument("--all", action="store_true",
                      help="stop every server, except other running notebooks' (see --force)")
    stop.add_argument("--force", action="store_true",
                      help="also stop a server another running notebook started")

    command("list", help="every server you started, from any kernel")

    status = command("status", help="versions, states, labels and load errors")
    status.add_argument("name", nargs="?", help="server name (default: the only one running)")

    logs = command("logs", help="the end of a server's log")
    logs.add_argument("name", nargs="?")
    logs.add_argument("-n", type=int, default=40, help="number of lines")

    reload = command("reload", help="re-read the config and rescan version folders now")
    reload.add_argument("name", nargs="?")

    signatures = command("signatures", help="a served model's inputs and outputs")
    signatures.add_argument("model")
    _route_arguments(signatures)
    _server_argument(signatures)

    url = command("url", help="where a browser or script reaches a server")
    url.add_argument("name", nargs="?")

    push = command("push", help="export a Keras model or tf.Module as the next "
                               "version of a served model and wait until it is AVAILABLE")
    push.add_argument("variable", help="name of the model in this notebook")
    push.add_argument("--name", required=True, help="the served model to add a version to")
    push.add_argument("--version", type=int, help="version number (default: next)")
    push.add_argument("--timeout", type=float, default=120.0)
    _server_argument(push)

    dashboard = command("dashboard", help="a live view of served models")
    dashboard.add_argument("name", nargs="?")

    connect = command("connect", help="use a model server running elsewhere (TF Serving or "
                                      "tfserve) as if it were started here")
    connect.add_argument("url", help="its REST address, such as http://host:8501")
    connect.add_argument("--name", required=True, help="the name to use it by")
    connect.add_argument("--grpc", metavar="HOST:PORT", help="its gRPC address (label moves)")
    connect.add_argument("--secret", default="", help="a tfserve_magic server's management "
                         "secret (its TFSERVE_MAGIC_SECRET): reloads and label moves from here")
    connect.add_argument("--models", help="comma list of its models (TF Serving does not list "
                                          "them itself)")
    _tls_arguments(connect, "an https:// URL, and TLS on --grpc")

    warmup = command("warmup", help="make a version's warmup file from logged requests",
                     description="Write VERSION_DIR/assets.extra/tf_serving_warmup_requests from "
                     "the request log of a model with logging_config (its filename_prefix): "
                     "the newest logged requests, at most 1000, which the version replays "
                     "before it serves.")
    warmup.add_argument("log_prefix", help="the logging_config's filename_prefix")
    warmup.add_argument("version_dir", help="the version folder to warm (a SavedModel)")
    warmup.add_argument("--model", help="only this model's requests (default: all)")
    warmup.add_argument("--max", type=int, default=1000, help="most requests kept (<= 1000)")

    disconnect = command("disconnect", help="forget a connected remote server")
    disconnect.add_argument("name")

    from tfserve_magic.operations.deploy.cli import add_arguments

    add_arguments(command("deploy", help="write a TensorFlow Serving deployment (Docker, "
                                         "Kubernetes, KServe) for a server"))
    return parser


def _tls_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--ca", help=f"PEM of the authority its TLS certificate chains to ({what})")
    parser.add_argument("--cert", help="PEM client certificate, for a server that asks for one "
                                       "(TF Serving's client_verify); needs --key")
    parser.add_argument("--key", help="PEM private key of --cert")


def _tls(args: argparse.Namespace) -> ClientTls | None:
    return ClientTls(args.ca, args.cert, args.key) if args.ca or args.cert or args.key else None


def _route_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--version", type=int, help="a specific version")
    group.add_argument("--label", help="a version label such as stable")


def _server_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", help="server name, when several serve the model")


def _predict_parser() -> _Parser:
    parser = _Parser(prog="%%predict", description="Send the cell (a Python expression: an "
                     "array, a list or a dict of arrays; or literal JSON) to MODEL's predict API.")
    parser.add_argument("model")
    _route_arguments(parser)
    parser.add_argument("--signature", help="signature name (default serving_default)")
    parser.add_argument("--columnar", action="store_true",
                        help="send {'inputs': ...} instead of {'instances': ...}")
    _server_argument(parser)
    parser.add_argument("--grpc", action="store_true",
                        help="send over TF Serving's gRPC API (numbers as tensor_content)")
    parser.add_argument("-o", "--output", metavar="VAR", help="store the result in VAR")
    return parser


def _show(obj: object) -> None:
    IPython.display.display(obj)  # type: ignore[no-untyped-call]  # IPython: unannotated


@magics_class
class TFServeMagics(Magics):
    """``%tfserve COMMAND ...`` and ``%%predict MODEL``."""

    warm_spare = Bool(True, help=(
        "After a first %tfserve start in this kernel, keep one server process warm (TensorFlow "
        "imported) for the next start to adopt: seconds less per later start, for the spare's "
        "memory (%tfserve list shows it). It stops with the kernel. False stops it and starts "
        "no other.")).tag(config=True)

    @observe("warm_spare")
    def _warm_spare_changed(self, change: dict[str, Any]) -> None:
        if not change["new"]:
            spare.discard()

    @property
    def _shell(self) -> InteractiveShell:
        if self.shell is None:  # only before IPython registers the class
            raise RuntimeError("tfserve magics used outside IPython")
        return self.shell

    @property
    def _namespace(self) -> dict[str, Any]:
        return self._shell.user_ns  # type: ignore[no-any-return]  # IPython: Dict(Any)

    @line_magic
    def tfserve(self, line: str) -> None:
        """Serve TensorFlow models. ``%tfserve --help`` lists the commands."""
        try:
            args, extra = _build_parser().parse_known_args(shlex.split(line))
        except _UsageProblem as problem:
            if str(problem):
                print(str(problem).strip(), file=sys.stderr)
            return
        if args.command is None:
            print(_build_parser().format_help())
            return
        if extra and args.command != "start":
            print(f"%tfserve {args.command}: unrecognized arguments: {' '.join(extra)}",
                  file=sys.stderr)
            return
        handler: Callable[..., None] = getattr(self, f"_cmd_{args.command}")
        try:
            handler(args, extra)
        # Everything the package refuses on purpose, plus what TensorFlow and numpy raise for
        # a value they refuse (ValueError, e.g. pushing something that is not a model) and
        # failed file operations (OSError): the message, never a traceback.
        except (TFServeError, ValueError, OSError) as error:
            print(f"%tfserve {args.command}: {error}", file=sys.stderr)

    # ---------------------------------------------------------------- commands

    def _cmd_start(self, args: argparse.Namespace, extra: Sequence[str]) -> None:
        if (args.model_dir is None) == (args.config is None):
            print("%tfserve start: give MODEL_DIR or --config FILE (not both)", file=sys.stderr)
            return
        unknown = [e for e in extra if not e.startswith("--")]
        if unknown:
            print(f"%tfserve start: unexpected arguments: {' '.join(unknown)}", file=sys.stderr)
            return
        spec = launcher.ServerSpec(
            model_dir=args.model_dir, config=args.config, name=args.name, port=args.port,
            host=args.host, gpu=args.gpu, gpu_memory_fraction=args.gpu_memory_fraction,
            poll=args.poll, detach=args.detach, extra_flags=tuple(extra), batching=args.batching,
            grpc_port=args.grpc_port, verbose=args.verbose, spare=self.warm_spare,
            tls=_tls(args))
        result = launcher.launch(spec, timeout=args.timeout)
        stream = sys.stderr if isinstance(result, (launcher.Failed, launcher.TimedOut)) else \
            sys.stdout
        print(display.render_start(result), file=stream)
        if isinstance(result, (launcher.Launched, launcher.Reused)):
            self._show_urls(result.handle, grpc=False)  # the start line named it

    def _cmd_stop(self, args: argparse.Namespace, extra: Sequence[str]) -> None:
        stopped = launcher.stop(args.name, all=args.all, force=args.force)
        print("Stopped " + (", ".join(stopped) if stopped else "nothing (no servers)") + ".")
        if args.all and not args.force:
            kept = [i.record for i in launcher.list_servers()
                    if not i.record.remote and i.record.name not in stopped]
            if kept:
                print("Kept " + ", ".join(f"{r.name} ({r.owner}'s)" for r in kept)
                      + ": other notebooks' servers stop with --force.")

    def _cmd_list(self, args: argparse.Namespace, extra: Sequence[str]) -> None:
        print(display.render_servers(launcher.list_servers()))
        warm = spare.current()
        if warm is not None:
            print(display.render_spare(warm))

    def _cmd_status(self, args: argparse.Namespace, extra: Sequence[str]) -> None:
        handle = launcher.find(args.name)
        info = handle.client.server_info() or ServerDescription()
        grpc = f" (gRPC {handle.grpc_target})" if handle.grpc_target else ""
        print(f"{handle.name} at {handle.url}{grpc}\n" + display.render_status(info))

    def _cmd_logs(self, args: argparse.Namespace, extra: Sequence[str]) -> None:
        name = args.name or launcher.find().name
        print(launcher.logs(name, args.n) or "(the log is empty)")

    def _cmd_reload(self, args: argparse.Namespace, extra: Sequence[str]) -> None:
        handle = launcher.find(args.name)
        print(display.render_status(handle.client.reload()))

    def _cmd_signatures(self, args: argparse.Namespace, extra: Sequence[str]) -> None:
        handle = launcher.find_serving(args.model, args.server)
        print(display.render_signatures(handle.client.signatures(
            args.model, version=args.version, label=args.label)))

    def _cmd_url(self, args: argparse.Namespace, extra: Sequence[str]) -> None:
        self._show_urls(launcher.find(args.name))

    def _cmd_push(self, args: argparse.Namespace, extra: Sequence[str]) -> None:
        from tfserve_magic.operations.push import push

        if args.variable not in self._namespace:
            print(f"%tfserve push: no variable named {args.variable} in this notebook",
                  file=sys.stderr)
            return
        outcome = push(self._namespace[args.variable], args.name, version=args.version,
                       timeout=args.timeout, server=args.server)
        stream = sys.stdout if outcome.ok else sys.stderr
        print(outcome.message, file=stream)

    def _cmd_dashboard(self, args: argparse.Namespace, extra: Sequence[str]) -> None:
        from tfserve_magic.notebook.widgets import dashboard

        _show(dashboard(args.name))

    def _cmd_connect(self, args: argparse.Namespace, extra: Sequence[str]) -> None:
        from tfserve_magic.lifecycle.remote import connect

        models = [m.strip() for m in (args.models or "").split(",") if m.strip()]
        tls = _tls(args)
        record = connect(args.url, args.name, grpc=args.grpc, models=models, from_kernel=True,
                         secret=args.secret, tls=tls)
        print(f"Connected {record.name}: {record.url}"
              + (f" (gRPC {record.grpc_target})" if record.grpc_target else "")
              + f", serving {', '.join(record.models)}. It is not ours to stop; "
              f"%tfserve disconnect {record.name} forgets it.")

    def _cmd_warmup(self, args: argparse.Namespace, extra: Sequence[str]) -> None:
        from tfserve_magic.operations.warmup import warmup_from_log

        written = warmup_from_log(args.log_prefix, args.version_dir, model=args.model,
                                  max_records=args.max)
        print(f"Wrote {written.records} requests (of {written.read} logged, from "
              f"{len(written.files)} file(s)) to {written.path}; the version replays them "
              "when it loads.")

    def _cmd_disconnect(self, args: argparse.Namespace, extra: Sequence[str]) -> None:
        from tfserve_magic.lifecycle.remote import disconnect

        url = disconnect(args.name)
        print(f"Disconnected {args.name} ({url}); it keeps serving there.")

    def _cmd_deploy(self, args: argparse.Namespace, extra: Sequence[str]) -> None:
        from tfserve_magic.operations.deploy.cli import deploy_from_arguments

        print(deploy_from_arguments(args))

    def _show_urls(self, handle: launcher.ServerHandle, grpc: bool = True) -> None:
        links = browser_links(handle)
        if len(links) > 1:  # links a person clicks: HTML, with a text form for other front ends
            IPython.display.display(display.links_bundle(links), raw=True)  # type: ignore[no-untyped-call]  # IPython
        else:
            print(display.render_urls(links))
        if grpc and handle.grpc_target:  # not a URL: TF Serving's gRPC clients take host:port
            print(f"gRPC: {handle.grpc_target}")

    # ---------------------------------------------------------------- %%predict

    @cell_magic
    def predict(self, line: str, cell: str) -> None:
        """Send the cell's data to a served model (replaced below by the options' help)."""
        try:
            args = _predict_parser().parse_args(shlex.split(line))
        except _UsageProblem as problem:
            if str(problem):
                print(str(problem).strip(), file=sys.stderr)
            return
        try:
            data = self._cell_data(cell)
        except _CellError as error:
            print(f"%%predict: {error}", file=sys.stderr)
            return
        try:
            handle = launcher.find_serving(args.model, args.server)
            version, label = args.version, args.label
            if version is None and label is None:
                route = defaults.get_default(handle.name, args.model)
                version, label = route.version, route.label
            client = handle.grpc_client() if args.grpc else handle.client
            started = time.monotonic()
            result = client.predict(args.model, data, version=version, label=label,
                                    signature=args.signature, columnar=args.columnar)
        except ServingError as error:
            print(f"%%predict {args.model}: {error.message} ({error.reason})", file=sys.stderr)
            return
        except (TFServeError, ValueError) as error:  # (ValueError: numpy refusing the data)
            print(f"%%predict: {error}", file=sys.stderr)
            return
        took = (time.monotonic() - started) * 1000
        if args.output:
            self._namespace[args.output] = result
        where = f"version {version}" if version is not None else (
            f"label {label!r}" if label else "latest")
        print(display.render_prediction(result))
        print(f"({args.model}, {where}, {'gRPC, ' if args.grpc else ''}{took:.1f} ms"
              + (f"; stored in {args.output})" if args.output else ")"))

    def _cell_data(self, cell: str) -> Any:
        source = cell.strip()
        if not source:
            raise _CellError("the cell is empty: write an array, a list, a dict or JSON")
        try:
            return self._shell.ev(source)  # type: ignore[no-untyped-call]  # IPython
        except (SyntaxError, NameError) as python_error:
            try:
                return json.loads(source)
            except ValueError:
                raise _CellError(f"the cell is neither a Python expression ({python_error}) nor "
                                 "JSON") from None


# What %%predict? shows: the options themselves, as %%predict --help prints them.
TFServeMagics.predict.__doc__ = _predict_parser().format_help()


def register(shell: InteractiveShell) -> None:
    """Register ``%tfserve`` and ``%%predict`` with ``shell``, with their tab completion."""
    from tfserve_magic.notebook.completion import install

    shell.register_magics(TFServeMagics)
    install(shell, _build_parser, _predict_parser)


def browser_links(handle: launcher.ServerHandle) -> list[tuple[str, str]]:
    """``server_urls`` as a browser opens them: through Jupyter, the path on the Jupyter
    server (``/user/alice/tfserve/NAME/``), which the page resolves against the host the
    browser uses; the kernel cannot know that host (127.0.0.1 or localhost, a hub's proxy)."""
    from tfserve_magic.notebook.jupyter_env import proxy_path

    return [(kind, (proxy_path(handle.name) or url) if kind == "through Jupyter" else url)
            for kind, url in server_urls(handle)]


def server_urls(handle: launcher.ServerHandle) -> list[tuple[str, str]]:
    """Every address that reaches ``handle`` (direct, through Jupyter's proxy, through Colab),
    each ending in "/": the server's own page."""
    from tfserve_magic.notebook.colab import colab_url

    urls = [("direct", handle.url)]
    try:
        from tfserve_magic.notebook.jupyter_env import proxy_url
    except ImportError:
        proxy_url = None  # type: ignore[assignment]
    if proxy_url is not None:
        try:
            proxied = proxy_url(handle.name)
        except Exception:  # an extra address is a convenience; never fail a start over it
            proxied = None
        if proxied:
            urls.append(("through Jupyter", proxied))
    colab = colab_url(handle.record.rest_api_port)
    if colab:
        urls.append(("Colab", colab))
    # One form for every address, the server's own page: append "v1/models/..." directly.
    return [(kind, url.rstrip("/") + "/") for kind, url in urls]
