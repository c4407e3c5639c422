"""``%tfserve start``, ``%tfserve connect`` and the client reach a server over TLS and mutual
TLS: the authority and the client certificate given once, then every client of the record (REST
over HTTPS, gRPC over TLS) uses them. Certificates made with the ``openssl`` command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from certificates import Certificates, make_certificates, ssl_config_text

from tfserve_magic.client import ClientTls, RequestError
from tfserve_magic.lifecycle import launcher


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("client_certs"))


def test_launcher_and_connect_serve_over_mutual_tls(isolated_runtime, ip, capsys, tmp_path,
                                                    certs, half_plus_two) -> None:
    config = tmp_path / "ssl.config"
    config.write_text(ssl_config_text(certs, client_verify=True))
    ca, cert, key = (certs.path(n) for n in ("ca.pem", "client.pem", "client.key"))
    ip.run_line_magic("tfserve", f"start {half_plus_two} --name secure --ca {ca} --cert {cert} "
                      f"--key {key} --ssl_config_file={config} --rest_api_ssl")
    out, err = capsys.readouterr()
    handle = launcher.find("secure")
    assert handle is not None, (out, err)
    assert handle.url.startswith("https://") and handle.url in out
    assert handle.client.predict("secure", [1.0, 2.0]).tolist() == [2.5, 3.0]
    assert handle.grpc_client().predict("secure", [1.0]).tolist() == [2.5]

    # %tfserve connect with the same files: the remote record's clients use them.
    ip.run_line_magic("tfserve", f"connect {handle.url} --name remote --grpc "
                      f"{handle.grpc_target} --ca {ca} --cert {cert} --key {key}")
    out, err = capsys.readouterr()
    assert err == "" and out.startswith(f"Connected remote: {handle.url}")
    remote = launcher.find("remote")
    assert remote is not None
    assert remote.client.predict("secure", [3.0]).tolist() == [3.5]
    assert remote.grpc_client().predict("secure", [4.0]).tolist() == [4.0]

    # Without a client certificate, or without the authority, the server is not reached.
    ip.run_line_magic("tfserve", f"connect {handle.url} --name nocert --ca {ca}")
    _, err = capsys.readouterr()
    assert err.startswith(f"%tfserve connect: cannot connect to {handle.url}: cannot reach")
    ip.run_line_magic("tfserve", f"connect {handle.url} --name noca")
    _, err = capsys.readouterr()
    assert "CERTIFICATE_VERIFY_FAILED" in err


def test_client_tls_files_are_checked(tmp_path: Path, certs) -> None:
    with pytest.raises(RequestError, match="needs both cert_file and key_file"):
        ClientTls(str(certs.path("ca.pem")), str(certs.path("client.pem")))
    with pytest.raises(RequestError, match="cannot use the TLS files"):
        ClientTls(str(tmp_path / "missing.pem")).ssl_context()
