"""One SSH client policy for downloads and publication: unknown host keys are refused.

A server's key is trusted when it is in the ``known_hosts`` file of the provider settings
(or, without one, in the user's ``~/.ssh/known_hosts``). An unknown key ends the connection
before any credential is sent, with a message saying how to trust the host. Accepting
unknown keys is an explicit per-provider choice (``accept_unknown_host_keys: true``),
logged as a warning each time.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from terrapipe.errors import DownloadError

log = logging.getLogger(__name__)


class UnknownHostKey(DownloadError):
    """The SSH server's host key is in no known_hosts file (and unknown keys are refused).

    A :class:`DownloadError` (an ``OSError``), so publication reports it as a failed publish.
    """


def _fingerprint(key: Any) -> str:
    import base64
    import hashlib

    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _policies() -> tuple[type, type]:
    import paramiko

    class Refuse(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
            host, _, port = hostname.strip("[").partition("]:")
            scan = f"ssh-keyscan -p {port} {host}" if port else f"ssh-keyscan {hostname}"
            raise UnknownHostKey(
                f"unknown SSH host key for {hostname} ({key.get_name()} {_fingerprint(key)}): "
                f"refused. Check the fingerprint, then add the key to a known_hosts file "
                f"({scan} >> FILE) named by the provider setting 'known_hosts', or set "
                "'accept_unknown_host_keys: true' for this provider"
            )

    class Accept(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
            log.warning(
                "accepting the unknown SSH host key of %s (%s %s): "
                "accept_unknown_host_keys is set for this provider",
                hostname,
                key.get_name(),
                _fingerprint(key),
            )

    return Refuse, Accept


def ssh_client(known_hosts: str | None, *, accept_unknown_host_keys: bool = False) -> Any:
    """A paramiko ``SSHClient`` (not yet connected) that trusts the keys of ``known_hosts``
    (or the user's own known_hosts) and refuses any other unless told to accept it."""
    import paramiko

    client = paramiko.SSHClient()
    if known_hosts:
        path = os.path.expanduser(known_hosts)
        try:
            client.load_host_keys(path)
        except FileNotFoundError:
            raise DownloadError(f"known_hosts file not found: {known_hosts!r}") from None
    else:
        client.load_system_host_keys()
    refuse, accept = _policies()
    client.set_missing_host_key_policy(accept() if accept_unknown_host_keys else refuse())
    return client
