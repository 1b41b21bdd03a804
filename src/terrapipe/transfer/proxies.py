"""HTTP(S) proxies from the environment, as curl reads them: ``https_proxy``/``HTTPS_PROXY``
for https URLs, ``http_proxy``/``HTTP_PROXY`` for http URLs, ``all_proxy``/``ALL_PROXY`` as
a fallback, and ``no_proxy``/``NO_PROXY`` for the hosts reached directly.

``NO_PROXY`` is a comma-separated list: ``*`` (no proxy at all), a domain that matches
itself and its sub-domains (``example.org`` and ``.example.org`` both match
``data.example.org``, never ``badexample.org``), an IP address, a CIDR block
(``10.0.0.0/8``), each optionally with ``:PORT``.

A proxy's credentials (``http://user:pass@proxy:3128``) go to the proxy only, as
``Proxy-Authorization`` on the ``CONNECT`` (https) or on the request (http); they are held
as a :class:`Secret` and a proxy is shown without them.
"""

from __future__ import annotations

import base64
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from terrapipe.errors import InvalidInput
from terrapipe.transfer.secrets import Secret, reveal, scrub_url

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, repr=False)
class Proxy:
    """One HTTP proxy: where it is and the ``Proxy-Authorization`` value (if any)."""

    host: str
    port: int
    authorization: Secret | None = None

    @property
    def display(self) -> str:
        return f"http://{self.host}:{self.port}"

    def headers(self) -> dict[str, str]:
        value = reveal(self.authorization)
        return {"Proxy-Authorization": value} if value else {}

    def __repr__(self) -> str:
        return f"Proxy({self.display!r})"


def parse_proxy(url: str, *, variable: str) -> Proxy:
    """A :class:`Proxy` from a proxy URL (``http://[user:pass@]host[:port]``)."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text  # curl's default for a bare host:port
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise InvalidInput(f"invalid proxy in {variable}: {scrub_url(text)!r}") from None
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise InvalidInput(
            f"unsupported proxy in {variable}: {scrub_url(text)!r} "
            "(expected http://[user:password@]host:port)"
        )
    authorization = None
    if parts.username is not None:
        raw = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        authorization = Secret("Basic " + base64.b64encode(raw).decode())
    return Proxy(parts.hostname.lower(), port or 1080, authorization)  # curl: 1080


def _host_entry(entry: str) -> tuple[str, int | None]:
    """(host, port or None) of one NO_PROXY entry."""
    entry = entry.strip().lower()
    if entry.startswith("["):  # [v6]:port
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return host, int(port) if port.isdigit() else None
    return entry, None


def bypasses(host: str, port: int, no_proxy: str) -> bool:
    """True when ``host:port`` is to be reached directly under this ``NO_PROXY`` value."""
    host = host.strip("[]").lower().rstrip(".")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in no_proxy.split(","):
        if not raw.strip():
            continue
        if raw.strip() == "*":
            return True
        name, entry_port = _host_entry(raw)
        if entry_port is not None and entry_port != port:
            continue
        if "/" in name and address is not None:
            try:
                if address in ipaddress.ip_network(name, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = name.lstrip(".").rstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


class ProxyConfig:
    """Which proxy (or none) an http(s) URL goes through, read once from the environment."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ

        def get(name: str) -> str:
            return (env.get(name.lower()) or env.get(name.upper()) or "").strip()

        fallback = get("all_proxy")
        self.proxies: dict[str, Proxy] = {}
        for scheme in ("http", "https"):
            variable = f"{scheme}_proxy"
            value = get(variable) or fallback
            if value:
                self.proxies[scheme] = parse_proxy(value, variable=variable.upper())
        self.no_proxy = get("no_proxy")

    def for_url(self, scheme: str, host: str, port: int) -> Proxy | None:
        proxy = self.proxies.get(scheme)
        if proxy is None or (self.no_proxy and bypasses(host, port, self.no_proxy)):
            return None
        return proxy

    def __repr__(self) -> str:
        shown = {k: p.display for k, p in self.proxies.items()}
        return f"ProxyConfig({shown!r}, no_proxy={self.no_proxy!r})"
