"""One attempt at fetching one file: the call every fetcher answers, and what they share.

:class:`Fetcher` is the base of the file, ftp, sftp (:mod:`.fetchers`) and HTTP(S)
(:mod:`.httpfetch`) fetchers. The downloader calls ``fetch(url, part, provider, progress,
limits)``; the base resolves the limits and hands the subclass one :class:`Attempt`. A
fetcher appends to the part file and returns the total size the server announced (or
None); it raises :class:`~terrapipe.errors.TransientTransferError` for failures worth
retrying and :class:`~terrapipe.errors.DownloadError` for the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from terrapipe.transfer.policy import Limits, TransferOptions
from terrapipe.transfer.providers import ProviderSettings
from terrapipe.transfer.secrets import Secret, strip_userinfo

__all__ = ["Attempt", "Fetcher", "Progress", "credentials", "part_offset"]

Progress = Callable[[int, int | None], None]
"""Called with (bytes so far, total or None)."""


@dataclass(frozen=True)
class Attempt:
    """The inputs of one attempt: URL, part file, provider settings, progress, limits."""

    url: str
    part: Path
    provider: ProviderSettings
    progress: Progress | None
    limits: Limits


class Fetcher:
    """Base of every fetcher: keeps the options, resolves limits, closes nothing."""

    def __init__(self, options: TransferOptions) -> None:
        self.options = options

    def fetch(
        self,
        url: str,
        part: Path,
        provider: ProviderSettings,
        progress: Progress | None,
        limits: Limits | None = None,
    ) -> int | None:
        """Append ``url``'s bytes to ``part`` (resuming); the announced total or None."""
        limits = limits or self.options.limits(None)
        return self.attempt(Attempt(url, part, provider, progress, limits))

    def attempt(self, job: Attempt) -> int | None:  # pragma: no cover - abstract
        """One attempt (a subclass's own transfer)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release pooled connections (none by default)."""


def part_offset(part: Path) -> int:
    """Bytes already in the part file (0 when there is none): where to resume."""
    try:
        return part.stat().st_size
    except FileNotFoundError:
        return 0


def credentials(url: str, provider: ProviderSettings) -> tuple[str, str | None, Secret | None]:
    """The URL without user info, and the user and password: the provider's, else the URL's."""
    bare, user, password = strip_userinfo(url)
    return bare, provider.username or user, provider.password or password
