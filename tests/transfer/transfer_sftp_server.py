"""A real SFTP server (paramiko's server side) on 127.0.0.1, serving one folder, password auth."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path

import paramiko
from paramiko import SFTPAttributes, SFTPHandle, SFTPServer, SFTPServerInterface
from paramiko.sftp import SFTP_FAILURE, SFTP_NO_SUCH_FILE, SFTP_OK, SFTP_PERMISSION_DENIED


def _errno(exc: OSError) -> int:
    return SFTPServer.convert_errno(exc.errno)


class _Handle(SFTPHandle):
    def stat(self):
        try:
            return SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))
        except OSError as exc:
            return _errno(exc)


class FolderSFTP(SFTPServerInterface):
    """SFTP operations mapped into ``root`` (paths outside it are refused)."""

    root: Path

    def _path(self, path: str) -> str:
        full = (self.root / path.lstrip("/")).resolve()
        if not str(full).startswith(str(self.root.resolve())):
            raise PermissionError(path)
        return str(full)

    def list_folder(self, path):
        try:
            full = self._path(path)
            out = []
            for name in os.listdir(full):
                attr = SFTPAttributes.from_stat(os.stat(os.path.join(full, name)))
                attr.filename = name
                out.append(attr)
            return out
        except PermissionError:
            return SFTP_PERMISSION_DENIED
        except OSError as exc:
            return _errno(exc)

    def stat(self, path):
        try:
            return SFTPAttributes.from_stat(os.stat(self._path(path)))
        except PermissionError:
            return SFTP_PERMISSION_DENIED
        except OSError as exc:
            return _errno(exc)

    lstat = stat

    def open(self, path, flags, attr):
        try:
            full = self._path(path)
            fd = os.open(full, flags, 0o644)
        except PermissionError:
            return SFTP_PERMISSION_DENIED
        except OSError as exc:
            return _errno(exc)
        if flags & os.O_WRONLY:
            mode = "ab" if flags & os.O_APPEND else "wb"
        elif flags & os.O_RDWR:
            mode = "a+b" if flags & os.O_APPEND else "r+b"
        else:
            mode = "rb"
        f = os.fdopen(fd, mode)
        handle = _Handle(flags)
        handle.filename = full
        handle.readfile = f
        handle.writefile = f
        return handle

    def remove(self, path):
        try:
            os.remove(self._path(path))
        except OSError as exc:
            return _errno(exc)
        return SFTP_OK

    def rename(self, oldpath, newpath):
        try:
            os.replace(self._path(oldpath), self._path(newpath))
        except OSError as exc:
            return _errno(exc)
        return SFTP_OK

    posix_rename = rename

    def mkdir(self, path, attr):
        try:
            os.mkdir(self._path(path))
        except OSError as exc:
            return _errno(exc)
        return SFTP_OK

    def rmdir(self, path):
        try:
            os.rmdir(self._path(path))
        except OSError as exc:
            return _errno(exc)
        return SFTP_OK

    def chattr(self, path, attr):
        return SFTP_OK

    def canonicalize(self, path):
        return "/" + path.lstrip("/") if path not in (".", "") else "/"

    def readlink(self, path):
        return SFTP_NO_SUCH_FILE

    def symlink(self, target_path, path):
        return SFTP_FAILURE


class _Auth(paramiko.ServerInterface):
    def __init__(self, user: str, password: str, log: list[tuple[str, str]]) -> None:
        self.user, self.password, self.log = user, password, log

    def check_auth_password(self, username, password):
        self.log.append((username, password))  # what a fake server would capture
        if username == self.user and password == self.password:
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def get_allowed_auths(self, username):
        return "password"

    def check_channel_request(self, kind, chanid):
        return (
            paramiko.OPEN_SUCCEEDED
            if kind == "session"
            else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
        )  # noqa: E501


class SftpTestServer:
    """Accepts connections in a thread; each gets a paramiko Transport with an SFTP subsystem."""

    def __init__(self, root: Path, user: str = "bob", password: str = "sftp-Pa55w0rd") -> None:
        self.root, self.user, self.password = root, user, password
        self.host_key = paramiko.RSAKey.generate(2048)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._transports: list[paramiko.Transport] = []
        self.auth_log: list[tuple[str, str]] = []  # (user, password) of every attempt
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        root = self.root

        class Sftp(FolderSFTP):
            pass

        Sftp.root = root
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            transport = paramiko.Transport(conn)
            transport.add_server_key(self.host_key)
            transport.set_subsystem_handler("sftp", paramiko.SFTPServer, Sftp)
            self._transports.append(transport)
            with contextlib.suppress(Exception):
                transport.start_server(server=_Auth(self.user, self.password, self.auth_log))

    def __enter__(self) -> SftpTestServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.sock.close()
        for t in self._transports:
            with contextlib.suppress(Exception):
                t.close()
