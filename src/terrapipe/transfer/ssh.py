"""One SSH client policy for downloads and publication: known hosts are enforced when a
``known_hosts`` file is configured; otherwise unknown host keys are accepted with a warning."""

from __future__ import annotations

import os
from typing import Any


def ssh_client(known_hosts: str | None) -> Any:
    """A paramiko ``SSHClient`` with the host-key policy above (not yet connected)."""
    import paramiko

    client = paramiko.SSHClient()
    if known_hosts:
        client.load_host_keys(os.path.expanduser(known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
    else:
        client.load_system_host_keys()
        client.set_missing_host_key_policy(paramiko.WarningPolicy())
    return client
