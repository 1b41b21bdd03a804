"""STAC multihash checksums at download (issue 9, item 10): ``file:checksum`` values such as
``1220…`` (sha2-256) are read, checked against hashlib, and an unusable one skips only its
own dataset, named by entry id."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pystac
import pytest
from shapely.geometry import box, mapping

from terrapipe.cli.main import main
from terrapipe.errors import IntegrityError, InvalidInput
from terrapipe.transfer.checksums import normalise_checksum
from terrapipe.transfer.download import RemoteFile, verify

BODY = b"multihash body " * 3000


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def multihash(code: int, digest: bytes) -> str:
    """The multihash encoding written independently of the code under test."""
    return (_varint(code) + _varint(len(digest)) + digest).hex()


HASHES = {"sha1": 0x11, "sha256": 0x12, "sha512": 0x13, "md5": 0xD5}


@pytest.mark.parametrize("algo", sorted(HASHES))
def test_multihash_and_algo_hex_read_as_the_same_checksum(algo, tmp_path):
    digest = hashlib.new(algo, BODY).digest()
    path = tmp_path / "f.bin"
    path.write_bytes(BODY)
    for spelling in (multihash(HASHES[algo], digest), f"{algo.upper()}:{digest.hex().upper()}"):
        assert normalise_checksum(spelling) == f"{algo}:{digest.hex()}"
        verify(path, size=len(BODY), checksum=spelling)  # the file's real digest matches
    wrong = multihash(HASHES[algo], hashlib.new(algo, b"other").digest())
    with pytest.raises(IntegrityError, match=f"{algo} mismatch"):
        verify(path, checksum=wrong)


def test_md5_multihash_code_is_a_two_byte_varint():
    assert multihash(0xD5, bytes(16)).startswith("d50110")
    assert normalise_checksum("sha2-256:" + "ab" * 32) == "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    "value",
    ["1220abcd", "1220" + "ab" * 33, "ff20" + "ab" * 32, "sha256:xyz", "crc32:deadbeef", "zz"],
)
def test_unusable_checksums_are_refused_with_the_uri(value):
    with pytest.raises(InvalidInput, match="invalid checksum") as err:
        RemoteFile("https://example.org/a.tif", checksum=value)
    assert "https://example.org/a.tif" in str(err.value)


def _catalog(tmp_path: Path, http_server) -> tuple[Path, dict[str, bytes]]:
    """A STAC catalog whose items' assets are on the test server, with STAC multihashes."""
    catalog = pystac.Catalog(id="root", description="multihash")
    bodies = {}
    checksums = {
        "ITEM_SHA256": lambda b: multihash(0x12, hashlib.sha256(b).digest()),
        "ITEM_SHA512": lambda b: multihash(0x13, hashlib.sha512(b).digest()),
        "ITEM_MD5": lambda b: multihash(0xD5, hashlib.md5(b).digest()),
        "ITEM_SHA1": lambda b: "sha1:" + hashlib.sha1(b).hexdigest(),
        "ITEM_BROKEN": lambda b: "1220abcd",  # truncated: unusable
    }
    for day, (item_id, checksum) in enumerate(checksums.items(), start=1):
        body = item_id.encode() * 1000
        bodies[item_id] = body
        http_server.state.files[f"{item_id}.tif"] = body
        item = pystac.Item(
            id=item_id,
            geometry=mapping(box(0, 0, 1, 1)),
            bbox=[0, 0, 1, 1],
            datetime=datetime(2024, 3, day, tzinfo=UTC),
            properties={},
        )
        item.add_asset(
            "data",
            pystac.Asset(
                href=http_server.url("pub", f"{item_id}.tif"),
                roles=["data"],
                extra_fields={"file:size": len(body), "file:checksum": checksum(body)},
            ),
        )
        catalog.add_item(item)
    root = tmp_path / "stac"
    catalog.normalize_hrefs(str(root))
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json", bodies


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_harvested_multihashes_download_and_a_broken_one_skips_only_its_dataset(
    db, http_server, tmp_path, capsys
):
    catalog, bodies = _catalog(tmp_path, http_server)
    code, _, err = _run(["catalog", "harvest", str(catalog), "--collection", "mh"], capsys)
    assert code == 0, err
    dest = tmp_path / "dl"
    code, out, err = _run(
        ["download", "-d", str(dest), "-q", '{"collection": "mh"}', "--json"], capsys
    )
    assert code == 1  # one dataset failed
    report = json.loads(out)
    downloaded = {Path(p).parent.name: Path(p).read_bytes() for p in report["downloaded"].values()}
    assert downloaded == {k: v for k, v in bodies.items() if k != "ITEM_BROKEN"}
    (reason,) = report["failed"].values()
    assert "'ITEM_BROKEN'" in reason and "invalid checksum '1220abcd'" in reason
    fetched = {p for _, p, _ in http_server.state.requests}
    assert "/pub/ITEM_BROKEN.tif" not in fetched and not (dest / "ITEM_BROKEN").exists()
