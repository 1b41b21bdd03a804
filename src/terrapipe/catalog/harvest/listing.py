"""Harvest a plain directory listing: an HTTP(S) index page or an FTP folder.

What ``python -m http.server``, nginx ``autoindex`` and Apache serve (an HTML page of
links) and what an FTP server lists are crawled recursively, at most ``max_depth`` folders
below the start (0: the start folder only). Only links *below* the folder are followed:
parent links, sort links (``?C=N;O=D``), fragments and other hosts are ignored, and each
folder is read once. Every raster and vector file (the suffixes a folder harvest takes)
becomes a dataset, read like a local file (:mod:`terrapipe.catalog.harvest.folder`):
footprint from the real bounds, time from tags or the name, product from the name.

Reading never downloads whole files over HTTP(S): rasters are opened through GDAL's
``/vsicurl/``, which fetches only the byte ranges of the header (the server must answer
``Range`` requests, as nginx and Apache do). GDAL settings apply inside a
``rasterio.Env`` for the read only, never globally. Vector files are fetched
whole to a temporary folder (up to :data:`WHOLE_FILE_LIMIT` bytes): their extent is
spread through the file, and pyogrio's GDAL takes no per-call settings. FTP has no
``/vsicurl/``; a raster's first :data:`FTP_HEADER_BYTES` are fetched and opened in
memory (a GeoTIFF's header is at its start when GDAL wrote it); when that is not enough
(a TIFF whose header is at its end) the whole file is fetched if it is at most
:data:`WHOLE_FILE_LIMIT` bytes, else the file is a failure saying so.
"""

from __future__ import annotations

import contextlib
import ftplib
import os
import posixpath
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePosixPath
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import quote, unquote, urldefrag, urljoin, urlsplit
from urllib.request import Request, urlopen

import rasterio
from rasterio.io import MemoryFile

from terrapipe.catalog.dataset import Dataset, DatasetURI, without_userinfo
from terrapipe.catalog.harvest import folder
from terrapipe.catalog.harvest.report import Failure
from terrapipe.errors import HarvestError

DEFAULT_DEPTH = 3  # folders below the start URL that are crawled
HTTP_TIMEOUT = 30.0  # seconds per index page or HEAD request
MAX_PAGE_BYTES = 8 * 1024 * 1024  # an index page larger than this is refused
FTP_HEADER_BYTES = 256 * 1024
WHOLE_FILE_LIMIT = 64 * 1024 * 1024
SUFFIXES = folder.RASTER_SUFFIXES | folder.VECTOR_SUFFIXES
# GDAL options for a /vsicurl/ read: no directory listing on open (one less request and
# no sidecar probing of every name), and only the raster suffixes may be fetched.
GDAL_OPTIONS: dict[str, Any] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ",".join(sorted(folder.RASTER_SUFFIXES)),
    "GDAL_HTTP_TIMEOUT": str(int(HTTP_TIMEOUT)),
    "GDAL_HTTP_MAX_RETRY": "2",
    "CPL_VSIL_CURL_CHUNK_SIZE": "16384",
    "GDAL_INGESTED_BYTES_AT_OPEN": "16384",
}

_MEMORY_OPTIONS = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """A file found in a listing: its URL and, when the listing says, its size."""

    url: str
    size: int | None = None


def is_listing(url: str) -> bool:
    """Whether ``url`` is a directory listing: any ``ftp://`` URL, or an HTML page.

    Raises HarvestError when the server answers with an HTTP error (404, 403, ...).
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme == "ftp":
        return True
    if scheme not in ("http", "https"):
        return False
    try:
        with urlopen(Request(url, headers={"Accept": "text/html"}), timeout=HTTP_TIMEOUT) as r:
            kind = r.headers.get_content_type()
            head = r.read(512).lstrip().lower()
    except HTTPError as exc:  # the source itself is missing or refused: say so
        raise HarvestError(f"cannot read {without_userinfo(url)}: HTTP {exc.code}") from None
    except (OSError, ValueError):
        return False
    return kind in ("text/html", "application/xhtml+xml") or head.startswith(
        (b"<!doctype", b"<html")
    )


def crawl(url: str, *, max_depth: int = DEFAULT_DEPTH) -> list[RemoteFile]:
    """Every harvestable file under the listing ``url``, sorted by URL."""
    _check_depth(max_depth)
    if urlsplit(url).scheme.lower() == "ftp":
        files = _crawl_ftp(url, max_depth)
    else:
        files = _crawl_http(_as_folder(url), max_depth)
    return sorted(files, key=lambda f: f.url)


def iter_listing(
    url: str, *, collection: str | None = None, max_depth: int = DEFAULT_DEPTH
) -> tuple[int, Iterator[Dataset | Failure]]:
    """(how many files, each file as a dataset or a failure) of the listing ``url``."""
    files = crawl(url, max_depth=max_depth)
    return len(files), (harvest_url(f.url, collection=collection, size=f.size) for f in files)


def harvest_url(
    url: str, *, collection: str | None = None, size: int | None = None
) -> Dataset | Failure:
    """One listed file as a dataset, or a failure naming its URL and the problem."""
    clean = without_userinfo(url)
    name = unquote(PurePosixPath(urlsplit(url).path).name)
    local = PurePosixPath(name)
    product = folder.product_of(local)
    entry_id = name.split(".")[0] if product else clean
    parent = PurePosixPath(urlsplit(url).path).parent.name
    default_collection = collection or (product.family if product else parent or None)
    source = {"kind": "listing_file", "url": clean, "collection": collection}
    try:
        if urlsplit(url).scheme.lower() == "ftp":
            meta, size = _read_ftp(url, local.suffix.lower())
        else:
            meta = _read_http(url, local.suffix.lower())
            size = size if size is not None else _http_size(url)
    except Exception as exc:  # any read error is reported per file, never fatal
        return Failure(
            entry_id=entry_id,
            error=f"cannot read {clean}: {folder.one_line(exc).replace(url, clean)}",
            source=source,
            title=name,
            collection=default_collection,
        )
    uri = DatasetURI(
        uri=clean,
        role="data",
        name=name,
        media_type=folder.MEDIA_TYPES.get(local.suffix.lower()),
        size=size,
    )
    return folder.file_dataset(entry_id, name, meta, product, default_collection, (uri,), source)


# -- HTTP -------------------------------------------------------------------------------


class _Links(HTMLParser):
    """The ``href`` of every ``<a>`` of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag.lower() == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def page_links(page_url: str, html: str) -> tuple[list[str], list[str]]:
    """(sub-folder URLs, file URLs) an index page links to, below ``page_url`` only."""
    parser = _Links()
    parser.feed(html)
    base = urlsplit(page_url)
    folder_path = base.path[: base.path.rfind("/") + 1] or "/"
    folders, files = [], []
    for href in parser.hrefs:
        if "?" in href:  # sort links of Apache and nginx fancyindex
            continue
        target = urldefrag(urljoin(page_url, href))[0]
        parts = urlsplit(target)
        same_origin = (parts.scheme, parts.netloc) == (base.scheme, base.netloc)
        below = parts.path.startswith(folder_path) and len(parts.path) > len(folder_path)
        if not same_origin or not below:
            continue
        if target.endswith("/"):
            folders.append(target)
        elif PurePosixPath(unquote(parts.path)).suffix.lower() in SUFFIXES:
            files.append(target)
    return sorted(set(folders)), sorted(set(files))


def _crawl_http(start: str, max_depth: int) -> list[RemoteFile]:
    found: dict[str, RemoteFile] = {}
    seen = {start}
    todo = [(start, 0)]
    while todo:
        page, depth = todo.pop()
        final, html = _get_page(page)
        seen.add(final)
        folders, files = page_links(final, html)
        for url in files:
            found.setdefault(url, RemoteFile(url))
        if depth < max_depth:
            for sub in folders:
                if sub not in seen:
                    seen.add(sub)
                    todo.append((sub, depth + 1))
    return list(found.values())


def _get_page(url: str) -> tuple[str, str]:
    """(the URL after redirects, the page text) of an index page."""
    try:
        with urlopen(Request(url, headers={"Accept": "text/html"}), timeout=HTTP_TIMEOUT) as r:
            body = r.read(MAX_PAGE_BYTES + 1)
            charset = r.headers.get_content_charset() or "utf-8"
            final = r.geturl()
    except HTTPError as exc:
        raise HarvestError(f"cannot list {without_userinfo(url)}: HTTP {exc.code}") from None
    except (URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HarvestError(f"cannot list {without_userinfo(url)}: {reason}") from None
    if len(body) > MAX_PAGE_BYTES:
        raise HarvestError(
            f"index page {without_userinfo(url)} is larger than {MAX_PAGE_BYTES} bytes"
        )
    return final, body.decode(charset, errors="replace")


def _http_size(url: str) -> int | None:
    try:
        with urlopen(Request(url, method="HEAD"), timeout=HTTP_TIMEOUT) as r:
            length = r.headers.get("Content-Length")
    except (OSError, ValueError):
        return None
    return int(length) if length and length.isdigit() else None


def _read_http(url: str, suffix: str) -> dict[str, Any]:
    """Metadata of a remote raster read by range requests; a vector is fetched whole."""
    if suffix in folder.VECTOR_SUFFIXES:
        return _http_vector(url, suffix)
    vsi = "/vsicurl/" + url
    # Never answer from GDAL's process-wide /vsicurl/ cache: the file may have changed
    # since it was last read (a re-harvest or a retry must see the new file).
    with rasterio.Env(**GDAL_OPTIONS, CPL_VSIL_CURL_NON_CACHED=vsi):
        return folder.raster_metadata(vsi)


def _http_vector(url: str, suffix: str) -> dict[str, Any]:
    """A vector file (and a shapefile's sidecars) fetched to a temporary folder and read.

    Vector formats keep their extent in many places (a GeoPackage's pages, a GeoJSON's
    every feature), and pyogrio's GDAL cannot take per-call settings, so a vector is
    read whole, up to :data:`WHOLE_FILE_LIMIT` bytes.
    """
    with tempfile.TemporaryDirectory(prefix="terrapipe-listing-") as tmp:
        target = os.path.join(tmp, "file" + suffix)
        _http_fetch(url, target)
        if suffix == ".shp":
            for sidecar in (".shx", ".dbf", ".prj", ".cpg"):
                with contextlib.suppress(HarvestError):
                    _http_fetch(url[: -len(suffix)] + sidecar, target[: -len(suffix)] + sidecar)
        return folder.vector_metadata(target)


def _http_fetch(url: str, target: str) -> None:
    try:
        with urlopen(url, timeout=HTTP_TIMEOUT) as r, open(target, "wb") as out:
            got = 0
            while chunk := r.read(1024 * 1024):
                got += len(chunk)
                if got > WHOLE_FILE_LIMIT:
                    raise HarvestError(
                        f"a vector file is read whole, and this one is larger than "
                        f"{WHOLE_FILE_LIMIT} bytes"
                    )
                out.write(chunk)
    except HTTPError as exc:
        raise HarvestError(f"HTTP {exc.code}") from None
    except URLError as exc:
        raise HarvestError(str(exc.reason)) from None


# -- FTP --------------------------------------------------------------------------------


def _ftp_connect(url: str) -> tuple[ftplib.FTP, str]:
    parts = urlsplit(url)
    ftp = ftplib.FTP(timeout=HTTP_TIMEOUT)
    try:
        ftp.connect(parts.hostname or "", parts.port or 21)
        ftp.login(unquote(parts.username or "anonymous"), unquote(parts.password or ""))
        ftp.voidcmd("TYPE I")  # binary: sizes and bytes as stored
    except ftplib.all_errors as exc:
        ftp.close()
        raise HarvestError(f"cannot connect to {without_userinfo(url)}: {exc}") from None
    return ftp, unquote(parts.path) or "/"


def _crawl_ftp(url: str, max_depth: int) -> list[RemoteFile]:
    ftp, start = _ftp_connect(url)
    root = url.split("://", 1)[0] + "://" + urlsplit(url).netloc
    found: list[RemoteFile] = []
    try:
        todo = [(start.rstrip("/") or "/", 0)]
        seen = set()
        while todo:
            path, depth = todo.pop()
            if path in seen:
                continue
            seen.add(path)
            for name, kind, size in _ftp_entries(ftp, path):
                child = posixpath.join(path, name)
                if kind == "dir" and depth < max_depth:
                    todo.append((child, depth + 1))
                elif kind == "file" and PurePosixPath(name).suffix.lower() in SUFFIXES:
                    found.append(RemoteFile(root + quote(child), size))
    except ftplib.all_errors as exc:
        raise HarvestError(f"cannot list {without_userinfo(url)}: {exc}") from None
    finally:
        _ftp_close(ftp)
    return found


def _ftp_entries(ftp: ftplib.FTP, path: str) -> Iterator[tuple[str, str, int | None]]:
    """(name, "file" | "dir", size) of a folder: MLSD when the server has it, else NLST."""
    try:
        entries = list(ftp.mlsd(path, facts=["type", "size"]))
    except ftplib.error_perm:
        entries = None
    if entries is not None:
        for name, facts in entries:
            kind = facts.get("type", "")
            if kind in ("file", "dir") and not name.startswith("."):
                size = facts.get("size")
                yield name, kind, int(size) if size and size.isdigit() else None
        return
    for entry in ftp.nlst(path):  # pragma: no cover - servers without MLSD
        name = posixpath.basename(entry.rstrip("/"))
        if name.startswith("."):
            continue
        kind = "file" if PurePosixPath(name).suffix.lower() in SUFFIXES else "dir"
        yield name, kind, None


def _read_ftp(url: str, suffix: str) -> tuple[dict[str, Any], int | None]:
    """Metadata of an FTP file from its first bytes, else (small files) the whole file."""
    ftp, path = _ftp_connect(url)
    try:
        try:
            size = ftp.size(path)
        except ftplib.all_errors:
            size = None
        if suffix in folder.RASTER_SUFFIXES:
            head = _ftp_head(ftp, path, FTP_HEADER_BYTES)
            try:
                with (
                    MemoryFile(head) as mem,
                    rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"),
                ):
                    return folder.raster_metadata(mem.name), size
            except Exception:
                if size is not None and size <= len(head):
                    raise
        if size is None or size > WHOLE_FILE_LIMIT:
            raise HarvestError(
                f"its header is not in the first {FTP_HEADER_BYTES} bytes and the file "
                f"({size if size is not None else 'unknown size'} bytes) is larger than the "
                f"{WHOLE_FILE_LIMIT} bytes fetched whole over FTP; serve it over HTTP"
            )
        return _ftp_whole(ftp, path, suffix), size
    finally:
        _ftp_close(ftp)


def _ftp_head(ftp: ftplib.FTP, path: str, limit: int) -> bytes:
    """The first ``limit`` bytes of a file; the transfer is aborted after them."""
    chunks: list[bytes] = []
    got = 0
    with ftp.transfercmd(f"RETR {path}") as conn:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # no read-ahead
        while got < limit:
            chunk = conn.recv(min(65536, limit - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    with contextlib.suppress(*ftplib.all_errors):
        ftp.voidresp()  # 226 when the file ended, 426 when we closed early
    return b"".join(chunks)


def _ftp_whole(ftp: ftplib.FTP, path: str, suffix: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="terrapipe-ftp-") as tmp:
        target = os.path.join(tmp, "file" + suffix)
        with open(target, "wb") as out:
            ftp.retrbinary(f"RETR {path}", out.write)
        if suffix in folder.VECTOR_SUFFIXES:
            return folder.vector_metadata(target)
        return folder.raster_metadata(target)


def _ftp_close(ftp: ftplib.FTP) -> None:
    try:
        ftp.quit()
    except ftplib.all_errors:
        ftp.close()


# -- helpers ----------------------------------------------------------------------------


def _as_folder(url: str) -> str:
    """A folder URL ends with ``/``; a page URL (``.../index.html``) is kept as it is."""
    parts = urlsplit(url)
    last = parts.path.rsplit("/", 1)[-1]
    return url if not last or "." in last or parts.query else url + "/"


def _check_depth(max_depth: int) -> None:
    if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 0:
        raise HarvestError(f"invalid depth {max_depth!r}: must be an integer >= 0")
