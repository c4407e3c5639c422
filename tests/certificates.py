"""Certificates made for a test with the ``openssl`` command line (the ``cryptography`` package
is not a dependency): an authority, a server certificate for 127.0.0.1 and localhost signed by
it, a client certificate signed by it, and a second authority that signed neither."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Certificates", "make_certificates", "ssl_config_text"]


@dataclass(frozen=True)
class Certificates:
    folder: Path

    def path(self, name: str) -> Path:
        return self.folder / name

    def read(self, name: str) -> bytes:
        return self.path(name).read_bytes()


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=120)


def _authority(folder: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)


def _signed(folder: Path, name: str, extensions: str) -> None:
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
             "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=folder)
    (folder / f"{name}.ext").write_text(extensions)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-out", f"{name}.pem",
             "-extfile", f"{name}.ext", cwd=folder)


def make_certificates(folder: Path) -> Certificates:
    """ca.pem/ca.key, server.pem/server.key (127.0.0.1, ::1, localhost), client.pem/client.key,
    and other_ca.pem (an authority that signed nothing here)."""
    folder.mkdir(parents=True, exist_ok=True)
    _authority(folder, "ca")
    _authority(folder, "other_ca")
    _signed(folder, "server", "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
            "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n")
    _signed(folder, "client", "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n")
    return Certificates(folder)


def _quoted(data: bytes) -> str:
    return '"' + data.decode().replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def ssl_config_text(certs: Certificates, *, client_verify: bool = False,
                    custom_ca: str | None = "ca.pem", key: str = "server.key") -> str:
    """A text-format SSLConfig (TF Serving's ``--ssl_config_file``) holding the PEM text."""
    lines = [f"server_key: {_quoted(certs.read(key))}",
             f"server_cert: {_quoted(certs.read('server.pem'))}"]
    if custom_ca:
        lines.append(f"custom_ca: {_quoted(certs.read(custom_ca))}")
    if client_verify:
        lines.append("client_verify: true")
    return "\n".join(lines) + "\n"
