"""Real servers on 127.0.0.1 for the transfer tests: HTTP (auth, OAuth2, faults), FTP, SFTP."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from transfer_data import REDIS_URL
from transfer_http_server import HttpTestServer
from transfer_sftp_server import SftpTestServer


@pytest.fixture
def http_server() -> Iterator[HttpTestServer]:
    with HttpTestServer() as server:
        yield server


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[HttpTestServer]:
    """The same server behind TLS with a self-signed certificate for 127.0.0.1."""
    import datetime as dt
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server = HttpTestServer()
    server.httpd.socket = context.wrap_socket(server.httpd.socket, server_side=True)
    server.scheme = "https"
    server.ca_file = cert_file
    with server:
        yield server


@pytest.fixture
def ftp_server(tmp_path: Path):
    """pyftpdlib serving ``tmp_path/ftproot`` to user ``carol`` (and anonymous read)."""
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import ThreadedFTPServer

    root = tmp_path / "ftproot"
    root.mkdir()
    authorizer = DummyAuthorizer()
    authorizer.add_user("carol", "ftp-Pa55w0rd", str(root), perm="elr")
    handler = type(
        "Handler",
        (FTPHandler,),
        {"authorizer": authorizer, "banner": "tp", "auth_failed_timeout": 0},
    )
    server = ThreadedFTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.2}, daemon=True)
    thread.start()
    port = server.socket.getsockname()[1]
    yield {"root": root, "port": port, "user": "carol", "password": "ftp-Pa55w0rd"}
    server.close_all()


@pytest.fixture
def sftp_server(tmp_path: Path):
    root = tmp_path / "sftproot"
    root.mkdir()
    with SftpTestServer(root) as server:
        known = tmp_path / "known_hosts"
        key = server.host_key
        known.write_text(f"[127.0.0.1]:{server.port} {key.get_name()} {key.get_base64()}\n")
        server.known_hosts = known
        yield server


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A unique key prefix on the real Redis; its keys are deleted afterwards."""
    import redis

    prefix = f"tp-test-{uuid.uuid4().hex[:10]}:"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:  # pragma: no cover - environment problem
        pytest.fail(f"Redis on 127.0.0.1:6379 is not reachable (run `make services`): {exc}")
    yield prefix
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()
