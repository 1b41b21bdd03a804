"""Keeping credentials out of logs, errors and reprs: a masked ``Secret`` and URL scrubbing."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_SENSITIVE_QUERY = re.compile(r"(token|password|passwd|secret|key|signature|sig|auth)", re.I)


class Secret:
    """A credential whose repr and str are masked; ``reveal()`` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"a secret must be a str, not {type(value).__name__}")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self):  # never pickled in clear by accident into a message or a log
        return (Secret, (self._value,))


def reveal(value: Secret | str | None) -> str | None:
    """The clear value of a secret (or plain string), None stays None."""
    return value.reveal() if isinstance(value, Secret) else value


def scrub_url(url: str) -> str:
    """The URL without user info and with sensitive query values masked, fit for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, MASK if _SENSITIVE_QUERY.search(k) else v) for k, v in pairs], safe="*"
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def scrub_text(text: str, secrets: tuple[Secret | str | None, ...] = ()) -> str:
    """Text with every URL scrubbed and every given secret value replaced by a mask."""
    text = _URL_IN_TEXT.sub(lambda m: scrub_url(m.group(0)), text)
    for secret in secrets:
        value = reveal(secret)
        if value and len(value) >= 3:
            text = text.replace(value, MASK)
    return text


def strip_userinfo(url: str) -> tuple[str, str | None, Secret | None]:
    """Split ``scheme://user:pass@host/path`` into the bare URL, the user and the password."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None, None
    from urllib.parse import unquote

    userinfo, host = parts.netloc.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    bare = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return bare, unquote(user) or None, Secret(unquote(password)) if password else None


# -- credentials kept for later: sealed with this installation's key ---------------------
KEY_FILE = "secret.key"


def sealing_key(home: Path) -> bytes:
    """This installation's key for credentials it must keep a while (a URL input's token,
    handed through the run store to the job runner): ``home/secret.key``, made on first use
    readable by its owner only. The server and its runner share ``home``, so both have it;
    a copy of the database alone reveals nothing."""
    from cryptography.fernet import Fernet

    path = home / KEY_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    home.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    try:
        os.link(tmp, path)  # never replaces a key another process made meanwhile
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes().strip()


def seal(text: str, key: bytes) -> str:
    """``text`` encrypted and authenticated with ``key`` (Fernet), as ASCII."""
    from cryptography.fernet import Fernet

    return Fernet(key).encrypt(text.encode()).decode("ascii")


def unseal(token: str, key: bytes) -> str:
    """What :func:`seal` sealed; ValueError if the token was not sealed with ``key``."""
    from cryptography.fernet import Fernet, InvalidToken

    try:
        return Fernet(key).decrypt(token.encode("ascii")).decode()
    except (InvalidToken, ValueError):
        raise ValueError("a sealed credential does not open with this installation's key") from None


def seal_urls(urls: dict[str, str], home: Path) -> dict[str, dict[str, str]]:
    """URLs as a database may keep them: ``{"url": the URL scrubbed}``, plus ``"sealed"``
    (the whole URL, sealed) when scrubbing removed a credential."""
    key = sealing_key(home) if any(scrub_url(u) != u for u in urls.values()) else b""
    out: dict[str, dict[str, str]] = {}
    for name, url in urls.items():
        shown = scrub_url(url)
        out[name] = {"url": shown} if shown == url else {"url": shown, "sealed": seal(url, key)}
    return out


def open_urls(stored: dict[str, Any], home: Path) -> dict[str, str]:
    """The URLs :func:`seal_urls` kept, credentials included."""
    out: dict[str, str] = {}
    for name, value in stored.items():
        if isinstance(value, str):  # recorded before URLs were sealed
            out[name] = value
        elif "sealed" in value:
            out[name] = unseal(value["sealed"], sealing_key(home))
        else:
            out[name] = value["url"]
    return out
