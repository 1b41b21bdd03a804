"""Keeping credentials out of logs, errors and reprs: a masked ``Secret`` and URL scrubbing."""

from __future__ import annotations

import re
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
