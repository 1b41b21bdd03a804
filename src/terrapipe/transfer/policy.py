"""Transfer policy: timeouts, retries with exponential backoff, size cap. No I/O here."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from terrapipe.errors import InvalidInput

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before retrying a transient failure."""

    attempts: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 120.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise InvalidInput(f"invalid attempts {self.attempts!r}: expected >= 1")
        if self.backoff_s < 0 or self.max_backoff_s < 0:
            raise InvalidInput(f"invalid backoff {self.backoff_s!r}: expected >= 0")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (0-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after_s)
        base = min(self.backoff_s * (2**attempt), self.max_backoff_s)
        return base * (1 + self.jitter * random.random())


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date), None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    import time

    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class TransferOptions:
    """Timeouts, retry policy, the per-file size cap and the chunk size of one transfer."""

    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    max_file_size: int | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    chunk_size: int = 1 << 20

    def __post_init__(self) -> None:
        if self.connect_timeout_s <= 0 or self.read_timeout_s <= 0:
            raise InvalidInput(
                f"invalid timeouts {self.connect_timeout_s!r}/{self.read_timeout_s!r}: "
                "expected seconds > 0"
            )
        if self.max_file_size is not None and self.max_file_size < 0:
            raise InvalidInput(f"invalid max_file_size {self.max_file_size!r}: expected >= 0")
