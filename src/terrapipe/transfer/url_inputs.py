"""URL file inputs: downloaded to a folder of their own, revalidated on every use.

A URL input is kept at ``<folder>/<sha256(url)[:24]>/<name>`` (:func:`url_target`; the
service's folder is ``$TERRAPIPE_HOME/inputs``) and revalidated with its server every
time a run needs it (:func:`fetch_url`), so a file that changed there is never used stale.
Whoever executes a run downloads its URL inputs first: the HTTP service for a synchronous
execution, the job runner or a server thread for an async job, and ``runs resume`` for a
run that was interrupted before its inputs were in place (:func:`terrapipe.runs.fetch_inputs`).

Errors name the input and the URL (credentials masked): :class:`UrlInputError` (bad input)
for what the URL answered, a body too large, or a server that cannot be reached;
:class:`~terrapipe.errors.StoreError` when the file cannot be stored here. This module
knows nothing of HTTP statuses or exit codes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from terrapipe.errors import StoreError, UrlInputError

__all__ = [
    "LOCK",
    "MAX_DOWNLOAD",
    "SIDECAR",
    "URL_SCHEMES",
    "LaterFetches",
    "fetch_url",
    "url_target",
]

URL_SCHEMES = ("http://", "https://")
SIDECAR = ".fetch.json"  # beside a fetched file: the validators the server gave for it
LOCK = ".fetch.lock"  # held while one URL is fetched: one fetcher at a time per URL
MAX_DOWNLOAD = 2 << 30  # the largest URL input fetched (the job runner's limit)


class LaterFetches:
    """A ``fetch`` for :func:`terrapipe.api.inputs.resolve_inputs` that downloads nothing
    now (an async job): each URL input becomes the local path it will be downloaded to
    (:func:`url_target`), and is noted in :attr:`urls` (input name -> URL) for whoever
    executes the job (:func:`terrapipe.runs.fetch_inputs`)."""

    __slots__ = ("folder", "urls")

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.urls: dict[str, str] = {}

    def __call__(self, name: str, url: str) -> Path:
        check_url(name, url)  # refused now, not after the job was accepted
        self.urls[name] = url
        return url_target(url, self.folder)


def check_url(name: str, url: str) -> None:
    """Refuse, naming input ``name``, a URL no request could be made to: not http(s), no
    host, a host name DNS cannot carry (a label over 63 characters), a bad port."""
    from urllib.parse import urlsplit

    from terrapipe.transfer.secrets import scrub_url

    problem = None
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
        if parts.scheme not in ("http", "https"):
            problem = "only http:// and https:// URLs are fetched"
        elif not host:
            problem = "it names no host"
        else:
            host.encode("idna")  # UnicodeError for an empty or over-long label
    except ValueError as exc:  # UnicodeError is one too
        problem = str(exc) or type(exc).__name__
    if problem:
        raise UrlInputError(
            f"input {name!r}: {scrub_url(url)!r} is not a URL that can be fetched: {problem}"
        )


def url_target(url: str, folder: Path) -> Path:
    """Where URL input ``url`` is kept: ``folder/<sha256(url)[:24]>/<name>``, one folder
    per URL. ``name`` is the URL path's last segment (its suffix tells GDAL and pyogrio
    the format), never hidden (so never one of the folder's own dot files), else
    ``download``."""
    from urllib.parse import urlsplit

    try:
        path = urlsplit(url).path
    except ValueError:
        path = ""
    base = path.rsplit("/", 1)[-1].lstrip(".") or "download"
    return Path(folder) / hashlib.sha256(url.encode()).hexdigest()[:24] / base


def fetch_url(name: str, url: str, target: Path, *, max_bytes: int, timeout: float = 60.0) -> Path:
    """Make ``target`` hold what ``url`` serves now (at most ``max_bytes``); ``target``.

    Every call asks the server again, so a file that changed there is never used stale:
    with the validators it gave last time (kept in a sidecar beside the file), a ``304``
    keeps the file untouched; a ``200`` body is written under a temporary name and renamed
    over the file, unless its SHA-256 is the kept file's (a server without validators
    sending the same bytes), when the file is left untouched, so its fingerprint (size,
    mtime) and the task cache entries keyed on it stay. Fetches of one URL take turns
    (a lock file in its folder, across threads and processes), and a reader sees the old
    file or the new one, never half of one. Errors name the input and the URL (credentials
    masked): :class:`UrlInputError` for what the URL answered (or that nothing answered),
    :class:`~terrapipe.errors.StoreError` when the file cannot be stored here."""
    import httpx

    from terrapipe.transfer.secrets import scrub_url

    check_url(name, url)
    target = Path(target)
    shown = scrub_url(url)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _fetch_lock(target.parent):
            _remove_debris(target)
            _refresh(name, url, shown, target, max_bytes=max_bytes, timeout=timeout)
    except (httpx.HTTPError, httpx.InvalidURL, UnicodeError) as exc:
        raise UrlInputError(f"input {name!r}: cannot fetch {shown}: {type(exc).__name__}") from None
    except OSError as exc:
        raise StoreError(
            f"input {name!r}: the download of {shown} cannot be stored: "
            f"{type(exc).__name__}: {exc.strerror or exc}"
        ) from None
    return target


class _Unchanged(Exception):
    """The body just downloaded is the kept file's bytes: keep the file."""


def _refresh(
    name: str, url: str, shown: str, target: Path, *, max_bytes: int, timeout: float
) -> None:
    import httpx

    from terrapipe.store.atomic import atomic_path

    sidecar = target.parent / SIDECAR
    kept, kept_sha = _kept(target, sidecar)
    headers = {}
    if kept.get("etag"):
        headers["If-None-Match"] = kept["etag"]
    if kept.get("last_modified"):
        headers["If-Modified-Since"] = kept["last_modified"]
    with httpx.stream(
        "GET", url, headers=headers, timeout=timeout, follow_redirects=True
    ) as response:
        if response.status_code == 304 and headers:
            return  # the kept file is what the server has
        if response.status_code != 200:
            raise UrlInputError(f"input {name!r}: {shown} answered {response.status_code}")
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > max_bytes:
            raise _too_large(name, shown, max_bytes)
        digest = hashlib.sha256()
        try:
            with atomic_path(target) as tmp:
                size = 0
                with tmp.open("xb") as out:
                    for chunk in response.iter_bytes(1 << 20):
                        size += len(chunk)
                        if size > max_bytes:
                            raise _too_large(name, shown, max_bytes)
                        digest.update(chunk)
                        out.write(chunk)
                if digest.hexdigest() == kept_sha:
                    raise _Unchanged
                _newer_than(tmp, target)
        except _Unchanged:
            pass
        validators = {
            "etag": response.headers.get("etag"),
            "last_modified": _strong_last_modified(response.headers),
        }
    _write_sidecar(sidecar, target, digest.hexdigest(), validators)


def _too_large(name: str, shown: str, max_bytes: int) -> UrlInputError:
    return UrlInputError(f"input {name!r}: {shown} is larger than {max_bytes} bytes")


def _remove_debris(target: Path) -> None:
    """Remove the temporary files of ``target`` and of its sidecar that a fetcher killed
    mid-write left (called with the URL's lock held: no live fetcher is writing one)."""
    from terrapipe.store.atomic import temps_of

    for debris in (*temps_of(target), *temps_of(target.parent / SIDECAR)):
        debris.unlink(missing_ok=True)


@contextlib.contextmanager
def _fetch_lock(folder: Path) -> Iterator[None]:
    """Hold the URL folder's lock file (``flock``: freed by the kernel if we die)."""
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _identity(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _kept(target: Path, sidecar: Path) -> tuple[dict[str, Any], str | None]:
    """The sidecar of the kept file (if it describes that very file) and its SHA-256; no
    validators for a file the sidecar does not describe (written by an older terrapipe,
    or changed by hand), whose SHA-256 is then computed."""
    try:
        st = target.stat()
    except FileNotFoundError:
        return {}, None
    try:
        meta = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        meta = {}
    if isinstance(meta, dict) and meta.get("file") == _identity(st) and meta.get("sha256"):
        return meta, meta["sha256"]
    digest = hashlib.sha256()
    with target.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return {}, digest.hexdigest()


def _newer_than(tmp: Path, target: Path) -> None:
    """Give the new file an mtime after the old one's when its size is the same, so a
    fingerprint (size, mtime) never takes new bytes for the old ones (two downloads in
    one tick of the file system's clock)."""
    try:
        old = target.stat()
    except FileNotFoundError:
        return
    new = tmp.stat()
    if new.st_size == old.st_size and new.st_mtime_ns <= old.st_mtime_ns:
        later = old.st_mtime_ns + 1_000
        os.utime(tmp, ns=(later, later))


def _strong_last_modified(headers: Any) -> str | None:
    """The response's ``Last-Modified`` if it is a strong validator (RFC 9110 8.8.2.2: at
    least a second before the response's ``Date``); else None. A file changed within the
    second it was served could change again under the same date, and a conditional
    request with it would be answered ``304`` on stale bytes."""
    from email.utils import parsedate_to_datetime

    last, date = headers.get("last-modified"), headers.get("date")
    if not last or not date:
        return None
    try:
        gap = (parsedate_to_datetime(date) - parsedate_to_datetime(last)).total_seconds()
    except (TypeError, ValueError):
        return None
    return last if gap >= 1 else None


def _write_sidecar(
    sidecar: Path, target: Path, sha256: str, validators: dict[str, str | None]
) -> None:
    """Record, atomically, the validators and the identity (size, mtime, inode) of the
    file now at ``target``: a sidecar that does not match the file is not trusted."""
    from terrapipe.store.atomic import atomic_write_text

    meta = {
        "sha256": sha256,
        "file": _identity(target.stat()),
        **{k: v for k, v in validators.items() if v},
    }
    atomic_write_text(sidecar, json.dumps(meta))
