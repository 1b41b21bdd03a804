"""What an archive holds, and the pure checks that decide whether it may be extracted.

Tar and zip members are both read into :class:`Member` (a name, a kind, a declared size,
a link target) so one set of checks covers both formats. :func:`check_members` looks at
the whole list before anything is written and raises
:class:`~terrapipe.errors.UnsafeArchive` naming the first member that could write
outside the destination. Paths are never trusted as text alone: a member's path, and a
link's target, are walked component by component against every symbolic link in the
archive, so a chain (``s -> .`` then ``s/t -> ..``, or the PATH_MAX chains of
CVE-2025-4517) is refused however the text normalises.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO, Literal

from terrapipe.errors import UnsafeArchive

Kind = Literal["file", "dir", "symlink", "hardlink", "special"]

_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class Member:
    """One archive member, format-independent.

    ``parts`` is the checked path (set by :func:`check_members`); ``open`` returns the
    member's bytes for files (and, in zip archives, a symbolic link's target).
    """

    name: str
    kind: Kind
    size: int = 0
    linkname: str = ""
    mode: int = 0o644
    mtime: float | None = None
    detail: str = ""
    open: Callable[[], BinaryIO] | None = field(default=None, compare=False, repr=False)

    @property
    def parts(self) -> tuple[str, ...]:
        return split_name(self.name)


def short(text: str, width: int = 80) -> str:
    """``text`` quoted, cut in the middle when long (names in one-line messages)."""
    if len(text) > width:
        text = text[: width // 2] + "…" + text[-width // 2 :]
    return repr(text)


def split_name(name: str) -> tuple[str, ...]:
    """The path components of a member name, without ``.`` or empty parts."""
    return tuple(p for p in name.split("/") if p not in ("", "."))


def _check_name(member: Member) -> tuple[str, ...]:
    name = member.name
    if "\x00" in name:
        raise UnsafeArchive(f"archive member {short(name)} has a NUL byte in its name")
    if name.startswith(("/", "\\")):
        raise UnsafeArchive(f"archive member {short(name)} has an absolute path")
    if _DRIVE.match(name):
        raise UnsafeArchive(f"archive member {short(name)} has an absolute path (drive letter)")
    if "\\" in name:
        raise UnsafeArchive(
            f"archive member {short(name)} has a backslash in its name (a Windows path separator)"
        )
    parts = split_name(name)
    if ".." in parts:
        raise UnsafeArchive(f"archive member {short(name)} contains '..'")
    if not parts and member.kind != "dir":
        raise UnsafeArchive(f"archive member {short(name)} has an empty name")
    return parts


def _walk(start: tuple[str, ...], target: str, symlinks: set[tuple[str, ...]]) -> tuple[str, ...]:
    """Resolve ``target`` from folder ``start`` without following links (pure).

    Raises (via the caller's message) when the walk leaves the root or steps on a
    symbolic link of the archive, the two ways a link can lead outside.
    """
    current = list(start)
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not current:
                raise _Outside
            current.pop()
        else:
            current.append(part)
        if tuple(current) in symlinks:
            raise _ThroughLink("/".join(current))
    return tuple(current)


class _Outside(Exception):
    pass


class _ThroughLink(Exception):
    pass


def _link_target(member: Member, start: tuple[str, ...], symlinks: set) -> tuple[str, ...]:
    name, link = member.name, member.linkname
    what = "hard link" if member.kind == "hardlink" else "link"
    if not link or "\x00" in link:
        raise UnsafeArchive(f"archive member {short(name)} is a {what} with an empty target")
    if link.startswith(("/", "\\")) or _DRIVE.match(link) or "\\" in link:
        raise UnsafeArchive(
            f"archive member {short(name)} is a {what} pointing outside: {short(link)}"
        )
    try:
        return _walk(start, link, symlinks)
    except _Outside:
        raise UnsafeArchive(
            f"archive member {short(name)} is a {what} pointing outside: {short(link)}"
        ) from None
    except _ThroughLink as exc:
        raise UnsafeArchive(
            f"archive member {short(name)} is a {what} whose target {short(link)} passes "
            f"through the symbolic link member {short(str(exc))}"
        ) from None


def check_members(members: list[Member], *, allow_symlinks: bool = False) -> None:
    """Raise UnsafeArchive naming the first member that is unsafe to extract (pure).

    Refused: absolute names (``/x``, ``C:/x``, ``C:\\x``), ``..`` components, devices and
    FIFOs, names given twice, any path that passes through a symbolic link member, links
    whose target leaves the archive's root or passes through a symbolic link member,
    hard links to anything but an earlier regular file, and symbolic links at all unless
    ``allow_symlinks``.
    """
    symlinks = {m.parts for m in members if m.kind == "symlink"}
    seen: dict[tuple[str, ...], Kind] = {}
    refused: Member | None = None  # the first symbolic link, refused after the other checks
    for m in members:
        parts = _check_name(m)
        if m.kind == "special":
            raise UnsafeArchive(
                f"archive member {short(m.name)} is a device or FIFO ({m.detail or 'special file'})"
            )
        for i in range(1, len(parts)):
            if parts[:i] in symlinks:
                raise UnsafeArchive(
                    f"archive member {short(m.name)} passes through the symbolic link member "
                    f"{short('/'.join(parts[:i]))}"
                )
        if m.kind == "symlink":
            _link_target(m, parts[:-1], symlinks - {parts})
            refused = refused or m
        elif m.kind == "hardlink":
            if ".." in split_name(m.linkname):
                raise UnsafeArchive(
                    f"archive member {short(m.name)} is a hard link whose target "
                    f"{short(m.linkname)} contains '..' (pointing outside, or not plainly inside)"
                )
            target = _link_target(m, (), symlinks)
            if seen.get(target) != "file":
                raise UnsafeArchive(
                    f"archive member {short(m.name)} is a hard link to {short(m.linkname)}, "
                    "which is not an earlier regular file of the archive"
                )
        if parts in seen and not (m.kind == "dir" and seen[parts] == "dir"):
            raise UnsafeArchive(f"archive member {short(m.name)} appears more than once")
        if parts:
            seen[parts] = "file" if m.kind == "hardlink" else m.kind
    if refused is not None and not allow_symlinks:
        raise UnsafeArchive(
            f"archive member {short(refused.name)} is a symbolic link (to "
            f"{short(refused.linkname)}); links are refused unless allowed "
            "(unarchive(..., allow_symlinks=True))"
        )
