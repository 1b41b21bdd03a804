"""Checksums as catalogs write them, read into one form: ``"ALGO:HEX"`` (``sha256:ab12…``).

Two spellings are accepted:

- ``ALGO:HEX`` with ALGO one of md5, sha1, sha256, sha512 (``sha-256`` and ``sha2-256``
  are the same as ``sha256``);
- a multihash in hex, as the STAC ``file:checksum`` field holds it: a varint hash code, a
  varint digest length, then the digest (``1220…`` is sha2-256 with 32 bytes). Codes:
  0x11 sha1, 0x12 sha2-256, 0x13 sha2-512, 0xd5 md5.

The digest's length must fit the algorithm, so a truncated value is refused here rather
than reported later as a mismatch of a correct download.
"""

from __future__ import annotations

import re

from terrapipe.errors import InvalidInput

DIGEST_SIZES = {"md5": 16, "sha1": 20, "sha256": 32, "sha512": 64}
MULTIHASH_CODES = {0x11: "sha1", 0x12: "sha256", 0x13: "sha512", 0xD5: "md5"}
_ALIASES = {"sha-1": "sha1", "sha-256": "sha256", "sha2-256": "sha256", "sha-512": "sha512"}
_ALIASES |= {"sha2-512": "sha512"}
_HEX = re.compile(r"[0-9a-fA-F]+")


class InvalidChecksum(InvalidInput):
    """A checksum is neither ``ALGO:HEX`` nor a known multihash (or its length is wrong)."""


def _varint(data: bytes, at: int) -> tuple[int, int]:
    """An unsigned LEB128 varint of ``data`` at ``at``: (value, next position)."""
    value = shift = 0
    for i in range(at, min(len(data), at + 9)):
        value |= (data[i] & 0x7F) << shift
        if not data[i] & 0x80:
            return value, i + 1
        shift += 7
    raise ValueError("truncated varint")


def parse_multihash(text: str) -> tuple[str, str]:
    """(algorithm, hex digest) of a hex multihash; ValueError when it is not one we know."""
    if not _HEX.fullmatch(text) or len(text) % 2:
        raise ValueError("not hex")
    data = bytes.fromhex(text)
    code, at = _varint(data, 0)
    length, at = _varint(data, at)
    algo = MULTIHASH_CODES.get(code)
    if algo is None:
        raise ValueError(f"unsupported multihash code 0x{code:x}")
    digest = data[at:]
    if length != DIGEST_SIZES[algo] or len(digest) != length:
        raise ValueError(f"{algo} digest of {len(digest)} bytes (declared {length})")
    return algo, digest.hex()


def normalise_checksum(value: str) -> str:
    """``"ALGO:hex"`` (lower case) of a checksum given as ``ALGO:HEX`` or a hex multihash."""
    text = str(value).strip()
    algo, sep, digest = text.partition(":")
    if sep:
        algo = _ALIASES.get(algo.strip().lower(), algo.strip().lower())
        digest = digest.strip()
        size = DIGEST_SIZES.get(algo)
        if size is not None and _HEX.fullmatch(digest) and len(digest) == 2 * size:
            return f"{algo}:{digest.lower()}"
    else:
        try:
            algo, digest = parse_multihash(text)
            return f"{algo}:{digest}"
        except ValueError:
            pass
    shown = text if len(text) <= 80 else text[:77] + "..."
    raise InvalidChecksum(
        f"invalid checksum {shown!r}: expected ALGO:HEX (ALGO one of "
        f"{', '.join(DIGEST_SIZES)}) or a hex multihash (sha2-256 1220…, sha2-512 1340…, "
        "sha1 1114…, md5 d50110…)"
    )
