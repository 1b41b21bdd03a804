"""Run in a subprocess by the tests: download files, or hold a semaphore slot until killed."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from terrapipe.transfer.download import Downloader, DownloadJob, RemoteFile, download_many
from terrapipe.transfer.locks import LockFactory
from terrapipe.transfer.providers import ProviderRegistry, parse_provider_settings


def main() -> None:
    args = json.loads(sys.argv[1])
    locks = LockFactory(
        redis_url=args.get("redis_url"),
        lock_dir=args["lock_dir"],
        prefix=args.get("prefix", "terrapipe:"),
        lease_s=args.get("lease_s", 30.0),
    )
    if args["mode"] == "hold":
        lease = locks.semaphore(args["name"], args["limit"]).acquire(timeout=10)
        print("held", flush=True)
        time.sleep(args.get("hold_s", 60))
        lease.release()
        return
    registry = ProviderRegistry(parse_provider_settings(args["providers"]))
    jobs = [
        DownloadJob(uri, (RemoteFile(uri),), Path(args["out"]) / str(i))
        for i, uri in enumerate(args["uris"])
    ]
    with Downloader(registry, locks=locks) as downloader:
        outcomes = download_many(downloader, jobs, workers=len(jobs))
    errors = [str(o.error) for o in outcomes if o.error]
    print(json.dumps({"errors": errors}), flush=True)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
