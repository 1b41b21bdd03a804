"""Transfer policy: timeouts, retries with exponential backoff, size caps, minimum speed and
deadline. No I/O here (the pace check reads a clock it is given)."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from terrapipe.errors import DownloadError, IntegrityError, InvalidInput, TransientTransferError

DEFAULT_MAX_SIZE = 50 << 30  # for a file of unknown size (setting download_max_size)
DECLARED = "its declared size"

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
    """Timeouts, retry policy, size caps, minimum speed, deadline and chunk size.

    Size: a file whose size the catalog declares may not grow beyond it; one of unknown
    size may not exceed ``default_max_size``; ``max_file_size`` (``--max-size``) caps every
    file. Time: a read that waits ``read_timeout_s`` for a byte is a timeout; a transfer
    slower than ``min_speed`` bytes/s over ``min_speed_window_s`` is abandoned (and retried,
    resuming); a file not done ``deadline_s`` after its first attempt began is given up.
    """

    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    max_file_size: int | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    chunk_size: int = 1 << 20
    default_max_size: int | None = DEFAULT_MAX_SIZE
    min_speed: float = 1024.0
    min_speed_window_s: float = 30.0
    deadline_s: float | None = None

    def __post_init__(self) -> None:
        if self.connect_timeout_s <= 0 or self.read_timeout_s <= 0:
            raise InvalidInput(
                f"invalid timeouts {self.connect_timeout_s!r}/{self.read_timeout_s!r}: "
                "expected seconds > 0"
            )
        for name in ("max_file_size", "default_max_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise InvalidInput(f"invalid {name} {value!r}: expected bytes >= 0")
        if self.min_speed < 0 or self.min_speed_window_s <= 0:
            raise InvalidInput(
                f"invalid min_speed {self.min_speed!r} over {self.min_speed_window_s!r} s: "
                "expected bytes/s >= 0 over seconds > 0"
            )
        if self.deadline_s is not None and self.deadline_s <= 0:
            raise InvalidInput(f"invalid deadline_s {self.deadline_s!r}: expected seconds > 0")

    @classmethod
    def from_settings(cls, **overrides: object) -> TransferOptions:
        """Options with the download limits of the settings (``TERRAPIPE_DOWNLOAD_*``)."""
        from terrapipe.settings import get_settings

        s = get_settings()
        values: dict[str, object] = {
            "read_timeout_s": s.download_read_timeout_s,
            "default_max_size": s.download_max_size,
            "min_speed": s.download_min_speed,
            "min_speed_window_s": s.download_min_speed_window_s,
            "deadline_s": s.download_deadline_s,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def size_cap(self, declared: int | None) -> tuple[int | None, str]:
        """The cap of one file (bytes or None) and what it is, for the message."""
        cap, what = (
            (declared, DECLARED)
            if declared is not None
            else (self.default_max_size, "the default size cap (setting download_max_size)")
        )
        if self.max_file_size is not None and (cap is None or self.max_file_size < cap):
            cap, what = self.max_file_size, "the size cap (--max-size)"
        return cap, what

    def limits(
        self, declared: int | None, *, clock: Callable[[], float] = time.monotonic
    ) -> Limits:
        """The limits of one file, its deadline counted from now."""
        cap, what = self.size_cap(declared)
        deadline = None if self.deadline_s is None else clock() + self.deadline_s
        return Limits(cap, what, self.min_speed, self.min_speed_window_s, deadline, clock)


class Limits:
    """Size cap, minimum speed and deadline of one file, checked as bytes arrive.

    ``check_total`` runs once before the body (the announced size), ``check_size`` after
    every read (an int comparison) and :meth:`pace` only when ``now >= next_check``: the
    per-read cost is one clock call.
    """

    __slots__ = ("cap", "what", "min_speed", "window_s", "deadline", "clock", "next_check")
    __slots__ += ("_start", "_done")

    def __init__(
        self,
        cap: int | None,
        what: str,
        min_speed: float,
        window_s: float,
        deadline: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cap, self.what = cap, what
        self.min_speed, self.window_s = min_speed, window_s
        self.deadline, self.clock = deadline, clock
        self.start(0)

    def start(self, done: int) -> None:
        """Begin a measuring window at ``done`` bytes (at each attempt)."""
        now = self.clock()
        self._start, self._done = now, done
        self.next_check = now + self.window_s if self.min_speed else float("inf")
        if self.deadline is not None:
            self.next_check = min(self.next_check, self.deadline)

    def check_total(self, total: int | None) -> None:
        """Refuse a body announced larger than the cap, before reading it."""
        if self.cap is not None and total is not None and total > self.cap:
            if self.what == DECLARED:
                raise IntegrityError(
                    f"size mismatch: the server announces {total} bytes, the catalog declares "
                    f"{self.cap}; nothing kept"
                )
            raise IntegrityError(
                f"file of {total} bytes exceeds {self.what} of {self.cap} bytes; nothing kept"
            )

    def check_size(self, done: int) -> None:
        """Stop a body that grew beyond the cap (an endless or lying server)."""
        if self.cap is not None and done > self.cap:
            if self.what == DECLARED:
                raise IntegrityError(
                    f"size mismatch: more than the declared {self.cap} bytes arrived; "
                    "stopped, nothing kept"
                )
            raise IntegrityError(
                f"download exceeds {self.what} of {self.cap} bytes; stopped, nothing kept"
            )

    def pace(self, done: int) -> None:
        """Raise when the deadline passed or the last window was slower than min_speed."""
        now = self.clock()
        if self.deadline is not None and now >= self.deadline:
            raise DownloadError(
                "download did not finish within its deadline (setting download_deadline_s)"
            )
        elapsed = now - self._start
        if self.min_speed and elapsed >= self.window_s:
            rate = (done - self._done) / elapsed
            if rate < self.min_speed:
                raise TransientTransferError(
                    f"too slow: {rate:.0f} bytes/s over {elapsed:.1f} s, below the minimum of "
                    f"{self.min_speed:.0f} bytes/s (setting download_min_speed)"
                )
            self.start(done)
        elif self.deadline is not None:
            self.next_check = min(self._start + self.window_s, self.deadline)


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*", re.I)
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_UNITS |= {"ki": 1 << 10, "mi": 1 << 20, "gi": 1 << 30, "ti": 1 << 40}


def parse_size(text: str | int, *, name: str = "size") -> int:
    """Bytes of ``"500MB"``, ``"2GiB"``, ``"1.5G"`` or a plain number of bytes."""
    if isinstance(text, int):
        return text
    match = _SIZE.fullmatch(str(text))
    if not match:
        raise InvalidInput(f"invalid {name} {text!r}: expected bytes, or e.g. 500MB, 2GiB")
    unit = (match.group(2) or "").lower().removesuffix("b")
    return int(float(match.group(1)) * _UNITS[unit])
