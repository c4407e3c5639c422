"""The standard ``grpc.health.v1.Health`` service (``Check`` and ``Watch``), as TF Serving offers it.

Written here rather than taken from grpcio-health-checking because each release of that package
requires one protobuf major version (1.71 protobuf 5, 1.72 to 1.82 protobuf 6, 1.83 on protobuf 7):
depending on it makes pip replace the protobuf, and with it TensorFlow, of an environment such as
Colab's. The two messages are declared from ``grpc/health/v1/health.proto`` through protobuf's
descriptor API, which protobuf 5 to 7 read alike, in a pool of their own (a process may also hold
grpcio-health-checking's copy); the tests check the wire format with that package's client stubs.
Semantics follow gRPC's reference servicer: ``""`` is the server as a whole, an unknown name is
``NOT_FOUND`` for ``Check`` and ``SERVICE_UNKNOWN`` for ``Watch``, and a graceful shutdown turns
every name ``NOT_SERVING`` for good. No TensorFlow here: it is registered before the handshake.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = ["HealthService", "ServingStatus"]

_PACKAGE = "grpc.health.v1"


class ServingStatus(enum.IntEnum):
    """``HealthCheckResponse.ServingStatus``, with health.proto's numbers."""

    UNKNOWN = 0
    SERVING = 1
    NOT_SERVING = 2
    SERVICE_UNKNOWN = 3


def _messages() -> tuple[Any, Any]:
    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="grpc/health/v1/health.proto", package=_PACKAGE, syntax="proto3")
    request = proto.message_type.add(name="HealthCheckRequest")
    request.field.add(name="service", json_name="service", number=1,
                      type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    response = proto.message_type.add(name="HealthCheckResponse")
    status = response.enum_type.add(name="ServingStatus")
    for member in ServingStatus:
        status.value.add(name=member.name, number=member.value)
    response.field.add(name="status", json_name="status", number=1, type=field.TYPE_ENUM,
                       label=field.LABEL_OPTIONAL,
                       type_name=f".{_PACKAGE}.HealthCheckResponse.ServingStatus")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return (message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.HealthCheckRequest")),
            message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.HealthCheckResponse")))


_Request, _Response = _messages()


class HealthService:
    """Statuses by service name, answered over ``grpc.health.v1.Health``; lives on the serving loop."""

    def __init__(self) -> None:
        self._status: dict[str, ServingStatus] = {}
        self._changed = asyncio.Event()
        self._shutting_down = False

    def add_to_server(self, server: grpc.aio.Server) -> None:
        """Register ``Check`` and ``Watch`` on a not yet started server."""
        codec = {"request_deserializer": _Request.FromString,
                 "response_serializer": _Response.SerializeToString}
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(f"{_PACKAGE}.Health", {
            "Check": grpc.unary_unary_rpc_method_handler(self._check, **codec),
            "Watch": grpc.unary_stream_rpc_method_handler(self._watch, **codec),
        }),))

    def set(self, service: str, status: ServingStatus) -> None:
        """Say how ``service`` is; ignored once the server is shutting down."""
        if not self._shutting_down:
            self._set(service, status)

    def enter_graceful_shutdown(self) -> None:
        """Mark every known name ``NOT_SERVING``, for good."""
        for service in list(self._status):
            self._set(service, ServingStatus.NOT_SERVING)
        self._shutting_down = True

    def _set(self, service: str, status: ServingStatus) -> None:
        self._status[service] = status
        # Wake every watcher once; each takes the next event before looking again.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _check(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        status = self._status.get(request.service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"Unknown service: {request.service!r}")
        return _Response(status=status)

    async def _watch(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        last: ServingStatus | None = None
        while True:
            changed = self._changed
            status = self._status.get(request.service, ServingStatus.SERVICE_UNKNOWN)
            if status != last:
                yield _Response(status=status)
                last = status
            await changed.wait()
