"""Download limits against hostile servers on 127.0.0.1 (issue 10, item 5): an endless body
stops at the size cap, a drip and a deadline end the download, a stalled read is a timeout,
and nothing partial is kept. Limits are small so each test runs in a few seconds."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from shapely.geometry import box

from terrapipe.catalog.dataset import Dataset, DatasetURI
from terrapipe.catalog.ingest import save_datasets
from terrapipe.cli.main import main
from terrapipe.errors import DownloadError, IntegrityError, TransientTransferError
from terrapipe.transfer.download import Downloader, RemoteFile
from terrapipe.transfer.locks import LockFactory
from terrapipe.transfer.policy import RetryPolicy, TransferOptions
from terrapipe.transfer.providers import ProviderRegistry

MIB = 1 << 20


def _downloader(tmp_path: Path, **options) -> Downloader:
    options.setdefault("retry", RetryPolicy(attempts=2, backoff_s=0.01))
    options.setdefault("read_timeout_s", 5)
    return Downloader(
        ProviderRegistry(),
        locks=LockFactory(lock_dir=tmp_path / "locks"),
        options=TransferOptions(**options),
    )


def _nothing_kept(folder: Path) -> None:
    assert not folder.exists() or list(folder.iterdir()) == []


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_endless_body_of_unknown_size_stops_at_the_default_cap(http_server, tmp_path, framing):
    url = f"{http_server.base}/endless/{framing}/forever.bin"
    t0 = time.monotonic()
    with _downloader(tmp_path, default_max_size=2 * MIB) as d, pytest.raises(IntegrityError) as err:
        d.fetch(url, tmp_path / "dl")
    assert time.monotonic() - t0 < 10
    assert "exceeds the default size cap (setting download_max_size) of 2097152 bytes" in str(
        err.value
    )
    _nothing_kept(tmp_path / "dl")
    assert http_server.state.endless_sent < 64 * MIB  # stopped near the cap, not at 4 GB


def test_endless_body_stops_at_the_catalogs_declared_size(http_server, tmp_path):
    remote = RemoteFile(f"{http_server.base}/endless/close/declared.bin", size=300_000)
    with _downloader(tmp_path) as d, pytest.raises(IntegrityError, match="declared 300000 bytes"):
        d.fetch(remote, tmp_path / "dl")
    _nothing_kept(tmp_path / "dl")


def test_a_drip_is_abandoned_below_the_minimum_speed(http_server, tmp_path):
    http_server.state.files["drip.bin"] = b"x" * 1000
    http_server.state.drip_delay = 0.25  # 4 bytes/s, each byte within the read timeout
    options = {"min_speed": 100.0, "min_speed_window_s": 1.0}
    t0 = time.monotonic()
    with _downloader(tmp_path, **options) as d, pytest.raises(TransientTransferError) as err:
        d.fetch(f"{http_server.base}/drip/drip.bin", tmp_path / "dl")
    assert time.monotonic() - t0 < 8  # two attempts of about a second each
    assert "too slow" in str(err.value) and "download_min_speed" in str(err.value)
    assert "after 2 attempts" in str(err.value)
    _nothing_kept(tmp_path / "dl")


def test_a_deadline_ends_the_download_whatever_the_speed(http_server, tmp_path):
    http_server.state.files["slow.bin"] = b"y" * 1000
    http_server.state.drip_delay = 0.05
    t0 = time.monotonic()
    with (
        _downloader(tmp_path, min_speed=0, deadline_s=1.0) as d,
        pytest.raises(DownloadError, match="deadline"),
    ):
        d.fetch(f"{http_server.base}/drip/slow.bin", tmp_path / "dl")
    assert time.monotonic() - t0 < 4
    _nothing_kept(tmp_path / "dl")


def test_a_stalled_read_is_reported_as_a_timeout(http_server, tmp_path):
    http_server.state.files["st.bin"] = b"z" * 400_000
    http_server.state.faults["st.bin"].append("stall")
    options = {"read_timeout_s": 0.3, "retry": RetryPolicy(attempts=1)}
    with _downloader(tmp_path, **options) as d, pytest.raises(TransientTransferError) as err:
        d.fetch(http_server.url("pub", "st.bin"), tmp_path / "dl")
    assert "read timeout" in str(err.value) and "connection closed" not in str(err.value)
    _nothing_kept(tmp_path / "dl")


def _seed_endless(db, http_server) -> None:
    save_datasets(
        db,
        [
            Dataset(
                entry_id="ENDLESS",
                collection="hostile",
                time_start=datetime(2024, 1, 1, tzinfo=UTC),
                footprint=box(0, 0, 1, 1),
                uris=(DatasetURI(f"{http_server.base}/endless/chunked/e.bin"),),
            )
        ],
    )


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_cli_max_size_and_the_setting_cap_an_endless_download(
    db, http_server, tmp_path, capsys, monkeypatch
):
    _seed_endless(db, http_server)
    dest = tmp_path / "dl"
    argv = ["download", "-d", str(dest), "-q", '{"collection": "hostile"}', "--json"]
    code, out, err = _run([*argv, "--max-size", "1MiB"], capsys)
    assert code == 1, err
    (reason,) = json.loads(out)["failed"].values()
    assert "size cap (--max-size) of 1048576 bytes" in reason
    _nothing_kept(dest / "ENDLESS")

    monkeypatch.setenv("TERRAPIPE_DOWNLOAD_MAX_SIZE", "500000")
    code, out, _ = _run(argv, capsys)
    (reason,) = json.loads(out)["failed"].values()
    assert code == 1 and "setting download_max_size) of 500000 bytes" in reason
    _nothing_kept(dest / "ENDLESS")

    code, _, err = _run([*argv, "--max-size", "lots"], capsys)
    assert code == 2 and "--max-size" in err and "'lots'" in err
