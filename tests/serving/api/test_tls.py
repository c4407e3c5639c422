"""TLS from TF Serving's --ssl_config_file: gRPC over TLS and mutual TLS as TF Serving serves it
(official stubs over ``grpc.ssl_channel_credentials``), REST over HTTPS with our --rest_api_ssl,
and flags that would weaken security refused. Certificates are made in the test with the
``openssl`` command line (``cryptography`` is not installed)."""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from certificates import Certificates, make_certificates, ssl_config_text
from grpc_helpers import outputs, predict_request
from server_process import RunningServer, run_server_expecting_failure, start_server, wait_for
from tensorflow_serving.apis import prediction_service_pb2_grpc

_PREDICT = json.dumps({"instances": [1.0, 2.0]})


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def _client_context(certs: Certificates, *, with_certificate: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certs.path("ca.pem")))
    if with_certificate:
        context.load_cert_chain(certs.path("client.pem"), certs.path("client.key"))
    return context


def _https(server: RunningServer, context: ssl.SSLContext, method: str, path: str,
           body: str | None = None) -> tuple[int, Any]:
    connection = http.client.HTTPSConnection("127.0.0.1", server.port, context=context,
                                             timeout=60)
    try:
        connection.request(method, path, body)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def _start(root: Path, certs: Certificates, model: Path, *, client_verify: bool) -> RunningServer:
    config = root / "ssl.config"
    config.write_text(ssl_config_text(certs, client_verify=client_verify))
    server = start_server("--model_name=h", f"--model_base_path={model}",
                          f"--ssl_config_file={config}", "--rest_api_ssl", log_dir=root)
    context = _client_context(certs, with_certificate=True)
    wait_for(lambda: _https(server, context, "GET", "/v1/models/h")[1]
             .get("model_version_status", [{}])[0].get("state") == "AVAILABLE",
             timeout=120, what="h AVAILABLE over HTTPS")
    return server


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, certs, half_plus_two) -> Iterator[RunningServer]:
    server = _start(tmp_path_factory.mktemp("tls"), certs, half_plus_two, client_verify=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def mtls_server(tmp_path_factory, certs, half_plus_two) -> Iterator[RunningServer]:
    server = _start(tmp_path_factory.mktemp("mtls"), certs, half_plus_two, client_verify=True)
    try:
        yield server
    finally:
        server.stop()


def _grpc_predict(channel: grpc.Channel) -> list[float]:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    try:
        response = stub.Predict(predict_request("h", {"x": [1.0, 2.0]}), timeout=60)
    finally:
        channel.close()
    return outputs(response)["y"].tolist()


def _secure_channel(server: RunningServer, certs: Certificates, *, with_certificate: bool,
                    ca: str = "ca.pem") -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=certs.read(ca),
        private_key=certs.read("client.key") if with_certificate else None,
        certificate_chain=certs.read("client.pem") if with_certificate else None)
    return grpc.secure_channel(server.grpc_target, credentials)


def test_grpc_over_tls_with_the_official_stub(tls_server, certs) -> None:
    assert tls_server.handshake["grpc_tls"] is True
    assert _grpc_predict(_secure_channel(tls_server, certs, with_certificate=False)) == [2.5, 3.0]
    assert "Serving gRPC on 127.0.0.1:" in tls_server.log()
    assert "(TLS, " in tls_server.log()


def test_a_plaintext_grpc_channel_is_not_served(tls_server) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _grpc_predict(grpc.insecure_channel(tls_server.grpc_target))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_client_that_does_not_trust_the_authority_is_refused(tls_server, certs) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _grpc_predict(_secure_channel(tls_server, certs, with_certificate=False, ca="other_ca.pem"))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_client_verify_refuses_a_client_without_a_certificate(mtls_server, certs) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _grpc_predict(_secure_channel(mtls_server, certs, with_certificate=False))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert _grpc_predict(_secure_channel(mtls_server, certs, with_certificate=True)) == [2.5, 3.0]
    assert "client certificates required" in mtls_server.log()


def test_rest_over_https_with_the_same_files(tls_server, certs) -> None:
    assert tls_server.handshake["rest_scheme"] == "https"
    context = _client_context(certs, with_certificate=False)
    assert _https(tls_server, context, "POST", "/v1/models/h:predict", _PREDICT) == \
        (200, {"predictions": [2.5, 3.0]})
    # Plain HTTP on the HTTPS port gets no answer.
    with pytest.raises((http.client.HTTPException, OSError)):
        _plain_predict(tls_server.port)


def _plain_predict(port: int) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", "/v1/models/h:predict", _PREDICT)
        return connection.getresponse().read()
    finally:
        connection.close()


def test_rest_with_client_verify_needs_a_client_certificate(mtls_server, certs) -> None:
    with pytest.raises((ssl.SSLError, ConnectionError)):
        # TLS 1.3: the refusal of a missing certificate arrives with the first read.
        _https(mtls_server, _client_context(certs, with_certificate=False), "POST",
               "/v1/models/h:predict", _PREDICT)
    assert _https(mtls_server, _client_context(certs, with_certificate=True), "POST",
                  "/v1/models/h:predict", _PREDICT) == (200, {"predictions": [2.5, 3.0]})


def test_alts_is_refused_never_a_silent_downgrade(half_plus_two) -> None:
    result = run_server_expecting_failure(f"--model_base_path={half_plus_two}",
                                          "--use_alts_credentials")
    assert result.returncode == 1
    assert "--use_alts_credentials is not supported by this server" in result.stderr
    assert "Refusing to start rather than serve gRPC without the credentials asked for" in \
        result.stderr
    # Saying no to ALTS is no request for it.
    from tfserve_magic.serving.process.flags import parse_flags

    options, _ = parse_flags(["--model_base_path=/m", "--use_alts_credentials=false"])
    assert options.use_alts_credentials is False and options.ignored_flags == ()


@pytest.mark.parametrize(("config", "flags", "message"), [
    (None, ["--rest_api_ssl"], "--rest_api_ssl needs --ssl_config_file"),
    ("missing", [], "Could not read --ssl_config_file"),
    ("server_cert: 'x'", [], "server_key and server_cert must both hold PEM text"),
    ("wrong key", [], "server_key and server_cert are not a usable PEM key and certificate pair"),
    ("verify without ca", [], "client_verify needs custom_ca"),
    ("not a proto {", [], "Error parsing text-format tensorflow.serving.SSLConfig"),
])
def test_bad_ssl_configs_stop_the_server_with_a_message(
        tmp_path, certs, half_plus_two, config, flags, message) -> None:
    argv = [f"--model_base_path={half_plus_two}", *flags]
    if config is not None:
        path = tmp_path / "ssl.config"
        if config == "wrong key":
            path.write_text(ssl_config_text(certs, key="client.key"))
        elif config == "verify without ca":
            path.write_text(ssl_config_text(certs, custom_ca=None, client_verify=True))
        elif config != "missing":
            path.write_text(config)
        argv.append(f"--ssl_config_file={path}")
    result = run_server_expecting_failure(*argv)
    assert result.returncode == 1, result.stderr
    assert message in result.stderr
