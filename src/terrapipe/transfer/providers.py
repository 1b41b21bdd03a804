"""Provider settings: a YAML file keyed by URL prefix (longest prefix wins), ``${ENV}`` values.

```yaml
'https://data.example.org/':
  username: alice
  password: ${EXAMPLE_PASSWORD}
  max_parallel_downloads: 4
  headers: {User-Agent: terrapipe}
'https://auth.example.org/':
  authentication_type: oauth2
  token_url: https://auth.example.org/token
  client_id: terrapipe
  client_secret: ${CLIENT_SECRET}
```

Credentials are held as :class:`~terrapipe.transfer.secrets.Secret` and never printed.
OAuth2 tokens come from :class:`TokenSource`, one per provider, fetched once for many
concurrent downloads (a lock) and cached until shortly before they expire.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from terrapipe.errors import DownloadError, ProviderSettingsError
from terrapipe.transfer.secrets import Secret, reveal, scrub_text, scrub_url, strip_userinfo

AUTH_TYPES = ("basic", "oauth2")
KNOWN_KEYS = {
    "username",
    "password",
    "authentication_type",
    "token_url",
    "client_id",
    "client_secret",
    "max_parallel_downloads",
    "headers",
    "known_hosts",
    "accept_unknown_host_keys",
    "ca_bundle",
}
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, repr=False)
class ProviderSettings:
    """What to use for one URL prefix: credentials, auth type, parallelism, headers."""

    prefix: str = ""
    username: str | None = None
    password: Secret | None = None
    authentication_type: str = "basic"
    token_url: str | None = None
    client_id: str | None = None
    client_secret: Secret | None = None
    max_parallel_downloads: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    known_hosts: str | None = None
    accept_unknown_host_keys: bool = False
    ca_bundle: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.accept_unknown_host_keys, bool):
            raise ProviderSettingsError(
                f"invalid accept_unknown_host_keys {self.accept_unknown_host_keys!r} for "
                f"{scrub_url(self.prefix)!r}: expected true or false"
            )
        if self.authentication_type not in AUTH_TYPES:
            raise ProviderSettingsError(
                f"invalid authentication_type {self.authentication_type!r} for "
                f"{scrub_url(self.prefix)!r}: expected one of {', '.join(AUTH_TYPES)}"
            )
        if self.authentication_type == "oauth2" and not (self.token_url and self.client_id):
            raise ProviderSettingsError(
                f"oauth2 for {scrub_url(self.prefix)!r} needs token_url and client_id"
            )
        mpd = self.max_parallel_downloads
        if mpd is not None and (not isinstance(mpd, int) or isinstance(mpd, bool) or mpd < 1):
            raise ProviderSettingsError(
                f"invalid max_parallel_downloads {mpd!r} for {scrub_url(self.prefix)!r}: "
                "expected a positive integer"
            )

    def __repr__(self) -> str:
        # header values may be API keys: show their names only
        return (
            f"ProviderSettings(prefix={scrub_url(self.prefix)!r}, username={self.username!r}, "
            f"password={self.password!r}, authentication_type={self.authentication_type!r}, "
            f"max_parallel_downloads={self.max_parallel_downloads!r}, "
            f"headers={sorted(self.headers)!r})"
        )

    @property
    def has_credentials(self) -> bool:
        return bool(self.username or self.password or self.authentication_type == "oauth2")

    @property
    def secrets(self) -> tuple[Secret | str | None, ...]:
        """Values to mask in messages: passwords, client secret, header values."""
        return (self.password, self.client_secret, *self.headers.values())


def _expand(value: Any, where: str) -> Any:
    if isinstance(value, str):

        def env(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ProviderSettingsError(f"environment variable {name!r} ({where}) is not set")
            return os.environ[name]

        return _ENV.sub(env, value)
    if isinstance(value, dict):
        return {k: _expand(v, where) for k, v in value.items()}
    return value


def parse_provider_settings(
    document: Any, *, source: str = "provider settings"
) -> list[ProviderSettings]:
    """Validate a parsed YAML document and build one :class:`ProviderSettings` per prefix."""
    if document is None:
        return []
    if not isinstance(document, dict):
        raise ProviderSettingsError(f"{source}: expected a mapping of URL prefix -> settings")
    result = []
    for prefix, values in document.items():
        if not isinstance(prefix, str) or not prefix:
            raise ProviderSettingsError(f"{source}: invalid URL prefix {prefix!r}")
        values = values or {}
        if not isinstance(values, dict):
            raise ProviderSettingsError(
                f"{source}: settings of {scrub_url(prefix)!r} must be a mapping"
            )
        unknown = set(values) - KNOWN_KEYS
        if unknown:
            raise ProviderSettingsError(
                f"{source}: unknown setting(s) {sorted(unknown)} for {scrub_url(prefix)!r}"
            )
        values = _expand(values, f"{source}, {scrub_url(prefix)}")
        headers = values.get("headers") or {}
        if not isinstance(headers, dict):
            raise ProviderSettingsError(
                f"{source}: headers of {scrub_url(prefix)!r} must be a mapping"
            )
        password = values.get("password")
        client_secret = values.get("client_secret")
        result.append(
            ProviderSettings(
                prefix=prefix,
                username=None if values.get("username") is None else str(values["username"]),
                password=None if password is None else Secret(str(password)),
                authentication_type=str(values.get("authentication_type") or "basic").lower(),
                token_url=values.get("token_url"),
                client_id=values.get("client_id"),
                client_secret=None if client_secret is None else Secret(str(client_secret)),
                max_parallel_downloads=values.get("max_parallel_downloads"),
                headers={str(k): str(v) for k, v in headers.items()},
                known_hosts=values.get("known_hosts"),
                accept_unknown_host_keys=values.get("accept_unknown_host_keys", False),
                ca_bundle=values.get("ca_bundle"),
            )
        )
    return result


_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "sftp": 22}


def normalise_url(url: str) -> str:
    """``url`` without user info, scheme and host lower-cased, the scheme's default port
    dropped: two spellings of one origin compare equal."""
    from urllib.parse import urlsplit, urlunsplit

    if "@" in url:
        url = strip_userinfo(url)[0]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    if not parts.netloc:
        return urlunsplit((scheme, "", parts.path, parts.query, parts.fragment))
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path, parts.query, parts.fragment))


def prefix_matches(prefix: str, url: str) -> bool:
    """True when ``url`` starts with ``prefix`` and the prefix ends at a URL boundary (its
    own ``/``, or the URL's next character is ``/``, ``?`` or ``#``, or nothing)."""
    if not url.startswith(prefix):
        return False
    if len(url) == len(prefix) or prefix.endswith("/"):
        return True
    return url[len(prefix)] in "/?#"


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def yaml_error_message(path: Path, exc: yaml.YAMLError) -> str:
    """Where a YAML error is (file, line, column) and what kind it is, never the text
    around it: the offending line of a settings file may hold a password."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or "not valid YAML"
    # quoted pieces are the file's own text (an alias, a tag): only a character is kept
    problem = _QUOTED.sub(lambda m: m.group(0) if len(m.group(0)) <= 4 else "'…'", str(problem))
    return f"invalid YAML in {str(path)!r}{where}: {problem} (fix the file there)"


class ProviderRegistry:
    """All providers of a settings file; :meth:`for_url` picks the longest matching prefix."""

    def __init__(self, providers: list[ProviderSettings] | None = None) -> None:
        self.providers = sorted(providers or [], key=lambda p: len(p.prefix), reverse=True)
        self._prefixes = sorted(
            ((normalise_url(p.prefix), p) for p in self.providers),
            key=lambda pair: len(pair[0]),
            reverse=True,
        )
        self._tokens: dict[str, TokenSource] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: str | Path | None) -> ProviderRegistry:
        """Read a YAML settings file; ``None`` gives an empty registry."""
        if path is None:
            return cls()
        path = Path(path)
        try:
            document = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise ProviderSettingsError(
                f"provider settings file not found: {str(path)!r}"
            ) from None
        except yaml.YAMLError as exc:
            raise ProviderSettingsError(yaml_error_message(path, exc)) from None
        return cls(parse_provider_settings(document, source=str(path)))

    def for_url(self, url: str) -> ProviderSettings:
        """The settings whose prefix is the longest match for ``url`` (empty settings if none).

        Both are compared normalised (see :func:`normalise_url`) and a prefix matches only at
        a boundary: ``https://data.example.org`` matches ``https://data.example.org/x`` but
        not ``https://data.example.org.attacker.net/`` nor ``https://data.example.org:8443/``.
        """
        url = normalise_url(url)
        for prefix, provider in self._prefixes:
            if prefix_matches(prefix, url):
                return provider
        return ProviderSettings()

    def token_source(self, provider: ProviderSettings) -> TokenSource:
        """The one token source of an OAuth2 provider (shared by every download)."""
        with self._lock:
            source = self._tokens.get(provider.prefix)
            if source is None:
                source = self._tokens[provider.prefix] = TokenSource(provider)
            return source

    def __repr__(self) -> str:
        return f"ProviderRegistry({[scrub_url(p.prefix) for p in self.providers]})"


class TokenSource:
    """Fetches OAuth2 access tokens for one provider, once, and caches them until expiry."""

    MARGIN_S = 30.0

    def __init__(self, provider: ProviderSettings, *, timeout: float = 30.0) -> None:
        self.provider = provider
        self.timeout = timeout
        self._lock = threading.Lock()
        self._token: Secret | None = None
        self._expires_at = 0.0
        self.fetch_count = 0

    def token(self) -> Secret:
        """A valid access token; only one thread fetches when it is missing or expired."""
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at:
                self._token, lifetime = self._fetch()
                self.fetch_count += 1
                self._expires_at = time.monotonic() + max(lifetime - self.MARGIN_S, lifetime / 2)
            return self._token

    def invalidate(self) -> None:
        """Forget the cached token (the server refused it)."""
        with self._lock:
            self._token = None

    def _fetch(self) -> tuple[Secret, float]:
        import httpx

        p = self.provider
        data = {"client_id": p.client_id or ""}
        if p.username:
            data.update(grant_type="password", username=p.username, password=reveal(p.password))
        else:
            data["grant_type"] = "client_credentials"
        if p.client_secret:
            data["client_secret"] = reveal(p.client_secret) or ""
        try:
            response = httpx.post(p.token_url or "", data=data, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise DownloadError(
                f"token request to {scrub_url(p.token_url or '')} failed: "
                f"{scrub_text(str(exc), p.secrets)}"
            ) from None
        if response.status_code != 200:
            raise DownloadError(
                f"token request to {scrub_url(p.token_url or '')} failed: "
                f"HTTP {response.status_code}"
            )
        try:
            body = response.json()
            token = str(body["access_token"])
        except (ValueError, KeyError, TypeError):
            raise DownloadError(
                f"token response of {scrub_url(p.token_url or '')} has no access_token"
            ) from None
        return Secret(token), float(body.get("expires_in") or 300)
