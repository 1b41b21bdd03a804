"""Download throughput of terrapipe.transfer against curl, on the same files in the same run.

A local nginx (Debian package, run with its own config on a free 127.0.0.1 port) serves one
1 GiB file and 500 files of 200 KiB from a temporary folder under /tmp. Each measurement
is repeated (``--repeat``, default 3) and the median reported:

- large file: ``curl -o FILE URL`` vs ``Downloader.fetch`` (target >= 90 % of curl);
- small files: ``curl --parallel --parallel-max 8`` vs ``download_many`` with
  ``max_parallel_downloads: 8`` (target >= 70 % of parallel curl).

Usage: ``.venv/bin/python benchmarks/download.py [--repeat 3] [--big-mib 1024] [--small 500]``
Everything is deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from terrapipe.transfer.download import Downloader, DownloadJob, RemoteFile, download_many
from terrapipe.transfer.locks import LockFactory
from terrapipe.transfer.providers import ProviderRegistry, parse_provider_settings

NGINX_CONF = """
worker_processes 4;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path {root}/tmp_body;
  proxy_temp_path {root}/tmp_proxy;
  fastcgi_temp_path {root}/tmp_fcgi;
  uwsgi_temp_path {root}/tmp_uwsgi;
  scgi_temp_path {root}/tmp_scgi;
  types {{ application/octet-stream bin; }}
  server {{
    listen 127.0.0.1:{port};
    root {root}/www;
  }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_files(www: Path, big_mib: int, small: int, small_kib: int) -> None:
    www.mkdir(parents=True)
    block = os.urandom(1 << 20)
    with open(www / "big.bin", "wb") as f:
        for i in range(big_mib):
            f.write(block[i % 7 :] + block[: i % 7])  # not all identical blocks
    (www / "small").mkdir()
    for i in range(small):
        (www / "small" / f"f{i:04d}.bin").write_bytes(os.urandom(small_kib * 1024))


def start_nginx(root: Path, port: int) -> subprocess.Popen:
    conf = root / "nginx.conf"
    conf.write_text(NGINX_CONF.format(root=root, port=port))
    proc = subprocess.Popen(
        ["nginx", "-c", str(conf), "-p", str(root), "-g", "daemon off;"],
        stderr=subprocess.PIPE,
    )
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"nginx did not start: {proc.stderr.read().decode() if proc.stderr else ''}")


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def clean(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--big-mib", type=int, default=1024)
    ap.add_argument("--small", type=int, default=500)
    ap.add_argument("--small-kib", type=int, default=200)
    args = ap.parse_args()
    if not shutil.which("nginx") or not shutil.which("curl"):
        raise SystemExit("needs nginx and curl (apt-get install -y nginx curl)")

    root = Path(tempfile.mkdtemp(prefix="tp-bench-", dir="/tmp"))
    root.chmod(0o755)  # nginx workers run as an unprivileged user
    port = free_port()
    nginx = None
    try:
        make_files(root / "www", args.big_mib, args.small, args.small_kib)
        nginx = start_nginx(root, port)
        base = f"http://127.0.0.1:{port}"
        out = root / "out"
        big_bytes = (root / "www" / "big.bin").stat().st_size
        small_names = sorted(p.name for p in (root / "www" / "small").iterdir())
        small_bytes = sum((root / "www" / "small" / n).stat().st_size for n in small_names)
        small_urls = [f"{base}/small/{n}" for n in small_names]

        registry = ProviderRegistry(
            parse_provider_settings({f"{base}/small/": {"max_parallel_downloads": 8}})
        )
        locks = LockFactory(lock_dir=root / "locks")

        def curl_big() -> None:
            subprocess.run(
                ["curl", "-sSf", "-o", str(out / "big.bin"), f"{base}/big.bin"], check=True
            )

        def ours_big() -> None:
            with Downloader(registry, locks=locks) as d:
                d.fetch(RemoteFile(f"{base}/big.bin", size=big_bytes), out)

        config = root / "curl.cfg"
        config.write_text(
            "".join(
                f'url = "{u}"\noutput = "{out}/{n}"\n'
                for u, n in zip(small_urls, small_names, strict=True)
            )
        )

        def curl_small() -> None:
            subprocess.run(
                [
                    "curl",
                    "-sSf",
                    "--no-progress-meter",
                    "--parallel",
                    "--parallel-max",
                    "8",
                    "-K",
                    str(config),
                ],
                check=True,
            )

        def ours_small() -> None:
            jobs = [
                DownloadJob(n, (RemoteFile(u),), out)
                for u, n in zip(small_urls, small_names, strict=True)
            ]
            with Downloader(registry, locks=locks, max_connections=8) as d:
                outcomes = download_many(d, jobs, workers=8)
            failed = [o for o in outcomes if o.error]
            if failed:
                raise SystemExit(f"{len(failed)} downloads failed: {failed[0].error}")

        results: dict[str, list[float]] = {
            k: [] for k in ("curl_big", "ours_big", "curl_small", "ours_small")
        }
        for _ in range(args.repeat):
            for name, fn in (
                ("curl_big", curl_big),
                ("ours_big", ours_big),
                ("curl_small", curl_small),
                ("ours_small", ours_small),
            ):
                clean(out)
                results[name].append(timed(fn))
        clean(out)

        med = {k: statistics.median(v) for k, v in results.items()}
        mb = 1e6
        big = {k: big_bytes / med[k] / mb for k in ("curl_big", "ours_big")}
        small = {k: small_bytes / med[k] / mb for k in ("curl_small", "ours_small")}
        files = {k: len(small_names) / med[k] for k in ("curl_small", "ours_small")}
        r_big = big["ours_big"] / big["curl_big"]
        r_small = small["ours_small"] / small["curl_small"]
        print(f"nginx on 127.0.0.1:{port}; {args.repeat} runs each; medians")
        print(
            f"large file ({big_bytes / 2**20:.0f} MiB): curl {big['curl_big']:.0f} MB/s, "
            f"terrapipe {big['ours_big']:.0f} MB/s, ratio {r_big:.2f} "
            f"(target >= 0.90: {'ok' if r_big >= 0.9 else 'MISSED'})"
        )
        print(
            f"small files ({len(small_names)} x {args.small_kib} KiB, 8 parallel): "
            f"curl {small['curl_small']:.0f} MB/s ({files['curl_small']:.0f} files/s), "
            f"terrapipe {small['ours_small']:.0f} MB/s ({files['ours_small']:.0f} files/s), "
            f"ratio {r_small:.2f} (target >= 0.70: {'ok' if r_small >= 0.7 else 'MISSED'})"
        )
        print("raw seconds:", {k: [round(x, 3) for x in v] for k, v in results.items()})
    finally:
        if nginx is not None:
            nginx.send_signal(signal.SIGQUIT)
            try:
                nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                nginx.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
