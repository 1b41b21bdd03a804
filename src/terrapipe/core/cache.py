"""Cache keys, input fingerprints and the reason a node runs.

A cache key is a stable hash of the task name and version, the parameters it reads, its
upstream results' keys, the mapped item, and fingerprints of its input files. The
*components* are stored with each result, so the next run can say what changed.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePath
from typing import Any

from terrapipe.core.values import encode_outputs, stable_hash

MISSING = "missing"


def file_fingerprint(path: Path, *, content: bool = False) -> str:
    """``size:mtime_ns`` of a file (or a digest of its bytes with ``content=True``); for a
    folder, one digest over every file below it; ``missing`` when absent."""
    try:
        st = path.stat()
    except OSError:
        return MISSING
    if path.is_dir():
        digest = hashlib.sha256()
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for fname in sorted(files):
                fp = Path(root) / fname
                digest.update(str(fp.relative_to(path)).encode())
                digest.update(file_fingerprint(fp, content=content).encode())
        return "dir:" + digest.hexdigest()[:32]
    if content:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        return "sha256:" + digest.hexdigest()
    return f"{st.st_size}:{st.st_mtime_ns}"


def fingerprints(paths: Iterable[Path], *, content: bool = False) -> dict[str, str]:
    """Fingerprints keyed by absolute path."""
    out: dict[str, str] = {}
    for p in paths:
        p = Path(p).expanduser()
        out[str(p.resolve())] = file_fingerprint(p, content=content)
    return out


# A string "plausibly names a file" when it has a path separator or ends in a file suffix
# (``a.tif``, ``zones.gpkg``; not ``1.5`` or ``77.1,20.2,77.3,20.4``). Anything else is not
# looked at, so parameters like dates, WKT and numbers cost no system call.
_SUFFIX = re.compile(r"\.[A-Za-z][A-Za-z0-9_-]{0,9}$")
_SEPARATORS = tuple({os.sep, os.altsep or os.sep, "/"})
_MAX_PATH = 4096
_NOT_PATHS = frozenset({int, float, bool, type(None)})


def _names_file(text: str) -> bool:
    if not text or len(text) > _MAX_PATH or "\n" in text or "://" in text:
        return False
    return any(sep in text for sep in _SEPARATORS) or _SUFFIX.search(text) is not None


def value_paths(value: Any, *, skip_prefixes: tuple[str, ...] = ()) -> list[str]:
    """Strings and paths inside ``value`` (nested in lists, tuples and dicts) that may name
    a local file, in order of appearance, without duplicates.

    Paths starting with one of ``skip_prefixes`` are left out: artifacts of upstream nodes
    are identified by the upstream cache key already (and checked by the cache look-up).
    No system call here: :func:`value_fingerprints` decides what exists."""
    found: dict[str, None] = {}
    stack = [value]
    while stack:
        v = stack.pop()
        kind = type(v)
        if kind is str:
            if _names_file(v) and not (skip_prefixes and v.startswith(skip_prefixes)):
                found[v] = None
        elif kind is dict:
            stack.extend(reversed(list(v.values())))
        elif kind is list or kind is tuple:
            stack.extend(reversed(v))
        elif isinstance(v, PurePath):
            text = str(v)
            if not (skip_prefixes and text.startswith(skip_prefixes)):
                found[text] = None
        elif isinstance(v, str):
            if _names_file(str(v)):
                found[str(v)] = None
        elif isinstance(v, Mapping):
            stack.extend(reversed(list(v.values())))
    return list(found)


def value_fingerprint(path: str, *, content: bool = False) -> str | None:
    """Fingerprint of a file a value names: ``size:mtime_ns`` (a digest of its bytes with
    ``content=True``). ``None`` when no file is there (the string is then taken for what it
    is) and for a folder: a folder in a value is as often where a task writes (a download or
    publish folder) as what it reads; a ``Path`` parameter fingerprints everything under it.
    """
    try:
        st = os.stat(path)
    except (OSError, ValueError):  # missing, not a path (NUL byte), too long
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    if content:
        try:
            return file_fingerprint(Path(path), content=True)
        except OSError:
            return None
    return f"{st.st_size}:{st.st_mtime_ns}"


def value_fingerprints(
    values: Iterable[Any],
    *,
    content: bool = False,
    skip_prefixes: tuple[str, ...] = (),
    into: dict[str, str] | None = None,
) -> dict[str, str]:
    """Fingerprints of the existing files the values name, keyed by the path as written
    (added to ``into`` when given; a path already there keeps its entry)."""
    out = {} if into is None else into
    values = [v for v in values if type(v) not in _NOT_PATHS]  # the common case: numbers
    if not values:
        return out
    for path in value_paths(values, skip_prefixes=skip_prefixes):
        if path in out:
            continue
        fp = value_fingerprint(path, content=content)
        if fp is not None:
            out[path] = fp
    return out


def key_components(
    *,
    task_name: str,
    task_version: Any,
    params: Mapping[str, Any],
    upstream: Mapping[str, Any],
    item: Any,
    inputs: Mapping[str, str],
) -> dict[str, Any]:
    """Everything a cached result depends on, as canonical JSON-able data."""
    return {
        "task": task_name,
        "version": str(task_version),
        "params": encode_outputs(dict(params)),
        "upstream": dict(upstream),
        "item": item,
        "inputs": dict(inputs),
    }


def cache_key(components: Mapping[str, Any]) -> str:
    return stable_hash(components)


def item_identity(item: Any) -> str:
    """Identity of a mapped item, so the same item keeps its cached result when the list
    around it grows."""
    return stable_hash(item, length=16)


def explain(previous: Mapping[str, Any] | None, current: Mapping[str, Any]) -> str:
    """Why a node must run, comparing with the components of its last result."""
    if previous is None:
        return "no cached result"
    if str(previous.get("version")) != str(current.get("version")):
        return f"version {previous.get('version')} -> {current.get('version')}"
    prev_inputs, cur_inputs = previous.get("inputs", {}), current.get("inputs", {})
    changed = [p for p in cur_inputs if prev_inputs.get(p) != cur_inputs[p]]
    changed += [p for p in prev_inputs if p not in cur_inputs]
    if changed:
        names = ", ".join(sorted({Path(p).name for p in changed})[:3])
        return f"input changed: {names}"
    prev_params, cur_params = previous.get("params", {}), current.get("params", {})
    changed = sorted(
        k for k in set(prev_params) | set(cur_params) if prev_params.get(k) != cur_params.get(k)
    )
    if changed:
        return "parameter changed: " + ", ".join(changed)
    prev_up, cur_up = previous.get("upstream", {}), current.get("upstream", {})
    changed = sorted(k for k in set(prev_up) | set(cur_up) if prev_up.get(k) != cur_up.get(k))
    if changed:
        return "upstream changed: " + ", ".join(changed)
    if previous.get("item") != current.get("item"):
        return "new item"
    return "no cached result"
