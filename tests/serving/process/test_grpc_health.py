"""Our ``grpc.health.v1`` service on a real ``grpc.aio`` server, read through grpcio-health-checking's
own client stubs (the wire format must be the standard one): Check, Watch, graceful shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tfserve_magic.serving.process.grpc_health import HealthService, ServingStatus

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def served() -> AsyncIterator[tuple[HealthService, health_pb2_grpc.HealthStub]]:
    server = grpc.aio.server()
    health = HealthService()
    health.add_to_server(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield health, health_pb2_grpc.HealthStub(channel)
    finally:
        await channel.close()
        await server.stop(None)


def _request(service: str) -> health_pb2.HealthCheckRequest:
    return health_pb2.HealthCheckRequest(service=service)


async def test_check_answers_the_status_set_and_not_found_for_other_names(served) -> None:
    health, stub = served
    health.set("", ServingStatus.SERVING)
    health.set("ModelService", ServingStatus.NOT_SERVING)
    assert (await stub.Check(_request(""), timeout=30)).status == health_pb2.HealthCheckResponse.SERVING
    reply = await stub.Check(_request("ModelService"), timeout=30)
    assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Check(_request("Nope"), timeout=30)
    assert error.value.code() is grpc.StatusCode.NOT_FOUND
    assert "Unknown service: 'Nope'" in error.value.details()


async def test_watch_streams_each_change_and_shutdown_turns_everything_not_serving(served) -> None:
    health, stub = served
    statuses = health_pb2.HealthCheckResponse
    call = stub.Watch(_request("PredictionService"), timeout=60)
    assert (await call.read()).status == statuses.SERVICE_UNKNOWN
    health.set("PredictionService", ServingStatus.SERVING)
    assert (await call.read()).status == statuses.SERVING
    health.enter_graceful_shutdown()
    assert (await call.read()).status == statuses.NOT_SERVING
    health.set("PredictionService", ServingStatus.SERVING)  # ignored from now on
    assert (await stub.Check(_request("PredictionService"), timeout=30)).status == statuses.NOT_SERVING
    call.cancel()
