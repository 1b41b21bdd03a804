"""Latency of the HTTP service under load: submit async jobs and poll their status.

``--clients`` threads, each with its own keep-alive ``http.client`` connection, for
``--seconds``: every client submits an async job of a no-op process, then polls the job's
status until it is final, and again. Prints p50/p99 of submit and of status, requests per
second, and the same for the first and the last 5 s (is it steady as jobs pile up?).

With ``--anchor pygeoapi`` it measures pygeoapi in the same run, the same way (its
``hello-world`` process, TinyDB job manager, under uvicorn); pygeoapi is installed into a
venv of its own under benchmarks/out/ the first time (it pins other versions than ours).

    .venv/bin/python benchmarks/api_latency.py [--clients 100] [--seconds 30] [--anchor pygeoapi]
        [--rate REQUESTS_PER_S] [--jobs N] [--workers N]

Closed loop by default (each client's next request as soon as the last is answered: the
machine saturates and the latencies are mostly the queue); ``--rate`` paces the clients
to a fixed total request rate and counts each latency from the request's scheduled start.

Targets (issue 13): submit p99 < 50 ms, status p99 < 20 ms, steady from the first to the
last 5 s, at 10x pygeoapi's request rate or more.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
NOOP_MODULE = HERE / "api_noop.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    parts = urlsplit(url)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(
                f"server exited: {proc.stdout.read().decode(errors='replace')[-2000:]}"
            )
        try:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=1)
            conn.request("GET", "/conformance")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


def start_terrapipe(home: Path, workers: int, jobs: int = 4) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, TERRAPIPE_HOME=str(home))
    cmd = [sys.executable, "-m", "terrapipe.cli.main", "serve", "--port", str(port)]
    cmd += ["--workers", str(workers), "--module", str(NOOP_MODULE)]
    cmd += ["--jobs", str(jobs)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_up(url, proc)
    return proc, url


PYGEOAPI_CONFIG = """
server:
  bind: {{host: 127.0.0.1, port: {port}}}
  url: http://127.0.0.1:{port}
  mimetype: application/json; charset=UTF-8
  encoding: utf-8
  languages: [en-US]
  limits: {{default_items: 10, max_items: 50}}
  map: {{url: "https://tile.openstreetmap.org/{{z}}/{{x}}/{{y}}.png", attribution: osm}}
  manager:
    name: TinyDB
    connection: {jobs}
    output_dir: {out}
logging: {{level: ERROR}}
metadata:
  identification: {{title: bench, description: bench, keywords: [bench], keywords_type: theme,
    terms_of_service: none, url: http://example.org}}
  license: {{name: CC-BY 4.0, url: https://creativecommons.org/licenses/by/4.0/}}
  provider: {{name: bench, url: http://example.org}}
  contact: {{name: bench, position: bench, address: x, city: x, stateorprovince: x,
    postalcode: x, country: x, phone: x, fax: x, email: x@example.org, url: http://example.org,
    hours: x, instructions: x, role: pointOfContact}}
resources:
  hello-world:
    type: process
    processor: {{name: HelloWorld}}
"""


def start_pygeoapi(workdir: Path) -> tuple[subprocess.Popen, str]:
    venv = HERE / "out" / "pygeoapi-venv"
    py = venv / "bin" / "python"
    if not py.exists():
        clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=clean)
        subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "pygeoapi==0.21.*", "uvicorn", "starlette"],
            check=True,
            env=clean,
        )
    port = free_port()
    config = workdir / "pygeoapi.yml"
    config.write_text(
        PYGEOAPI_CONFIG.format(port=port, jobs=workdir / "jobs.db", out=workdir / "out")
    )
    openapi = workdir / "openapi.yml"
    env = dict(os.environ, PYGEOAPI_CONFIG=str(config), PYGEOAPI_OPENAPI=str(openapi))
    env.pop("PYTHONPATH", None)  # its own venv only
    subprocess.run(
        [
            str(venv / "bin" / "pygeoapi"),
            "openapi",
            "generate",
            str(config),
            "--output-file",
            str(openapi),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    cmd = [
        str(py),
        "-m",
        "uvicorn",
        "pygeoapi.starlette_app:APP",
        "--port",
        str(port),
        "--log-level",
        "error",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_up(url, proc)
    return proc, url


def client_loop(
    url: str,
    process: str,
    inputs: dict,
    stop_at: float,
    out: list,
    final: set[str],
    interval: float | None = None,
    start_at: float = 0.0,
) -> None:
    """One client: submit a job, poll its status until final, again, until ``stop_at``.

    Closed loop (``interval`` None): the next request as soon as the last is answered (a
    poll 10 ms after the last status). Paced (``interval`` s): one request every
    ``interval`` s on a fixed schedule, and each latency counted from its scheduled start,
    so a slow answer that delays the next request is not hidden (no coordinated omission).
    """
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    conn.connect()  # connected before the start, as clients already talking to it are
    body = json.dumps({"inputs": inputs}).encode()
    headers = {"Content-Type": "application/json", "Prefer": "respond-async"}
    if start_at > time.monotonic():
        time.sleep(start_at - time.monotonic())
    due = time.monotonic() + (random.random() * interval if interval else 0.0)

    def next_start() -> float:
        """When the next request starts (waiting for its slot when paced)."""
        nonlocal due
        if interval is None:
            return time.monotonic()
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        start, due = due, due + interval
        return start

    while time.monotonic() < stop_at:
        t0 = next_start()
        try:
            conn.request("POST", f"/processes/{process}/execution", body, headers)
            resp = conn.getresponse()
            resp.read()
            location = resp.getheader("Location")
        except OSError:  # counted as an error (599), then a new connection
            out.append(("submit", t0, time.monotonic() - t0, 599))
            conn.close()
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            continue
        out.append(("submit", t0, time.monotonic() - t0, resp.status))
        if not location:
            continue
        path = urlsplit(location).path
        while time.monotonic() < stop_at:
            if interval is None:
                time.sleep(0.01)
            t0 = next_start()
            try:
                conn.request("GET", path, headers={"Accept": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
            except OSError:
                out.append(("status", t0, time.monotonic() - t0, 599))
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
                break
            out.append(("status", t0, time.monotonic() - t0, resp.status))
            try:
                if json.loads(data).get("status") in final:
                    break
            except ValueError:
                break
    conn.close()


def _client_group(
    url: str,
    process: str,
    inputs: dict,
    clients: int,
    start_at: float,
    stop_at: float,
    interval: float | None,
    out: Any,
) -> None:
    """``clients`` client threads in this process; their samples and this process's CPU
    time go to ``out`` (a queue) when they are done."""
    final = {"successful", "failed", "dismissed"}
    results: list[list] = [[] for _ in range(clients)]
    threads = [
        threading.Thread(
            target=client_loop,
            args=(url, process, inputs, stop_at, r, final, interval, start_at),
        )
        for r in results
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(([s for r in results for s in r], time.process_time()))


def measure(
    url: str,
    process: str,
    inputs: dict,
    clients: int,
    seconds: float,
    rate: float | None = None,
    processes: int = 4,
) -> tuple[dict, float]:
    """Run ``clients`` clients for ``seconds``, spread over ``processes`` processes (a
    hundred threads in one interpreter queue for its lock: a thread just started waited
    seconds for its first request); closed loop, or paced to ``rate`` requests per second
    in all. The figures, and the clients' CPU seconds."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    start = time.monotonic() + 1.0  # every client connected by then
    stop_at = start + seconds
    interval = clients / rate if rate else None
    sizes = [clients // processes + (i < clients % processes) for i in range(processes)]
    group = [
        ctx.Process(
            target=_client_group,
            args=(url, process, inputs, n, start, stop_at, interval, queue),
        )
        for n in sizes
        if n
    ]
    for p in group:
        p.start()
    samples: list = []
    cpu = 0.0
    for _ in group:
        part, used = queue.get()
        samples.extend(part)
        cpu += used
    for p in group:
        p.join()
    return summarise(samples, start, seconds), cpu


def _proc_cpu() -> dict[int, tuple[int, str, float]]:
    """Every process: pid -> (parent pid, command line, CPU seconds so far)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        out[int(entry)] = (int(fields[1]), cmd, (int(fields[11]) + int(fields[12])) / tick)
    return out


def tree_cpu(root: int) -> dict[str, float]:
    """CPU seconds used so far by ``root`` and its descendants: the job runner apart
    (``runner``), the rest (``server``: terrapipe serve and its uvicorn workers)."""
    procs = _proc_cpu()
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, (ppid, _, _) in procs.items() if ppid in tree} - tree
        grew = bool(more)
        tree |= more
    totals = {"server": 0.0, "runner": 0.0}
    for pid in tree:
        if pid in procs:
            _, cmd, cpu = procs[pid]
            totals["runner" if "terrapipe.api.runner" in cmd else "server"] += cpu
    return totals


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def summarise(samples: list, start: float, seconds: float) -> dict:
    out = {}
    for window, lo, hi in (
        ("all", 0, seconds),
        ("first 5 s", 0, 5),
        ("last 5 s", seconds - 5, seconds),
    ):
        part = [s for s in samples if lo <= s[1] - start < hi]
        span = hi - lo
        row = {}
        for kind in ("submit", "status"):
            lat = [s[2] for s in part if s[0] == kind]
            errors = sum(1 for s in part if s[0] == kind and s[3] >= 400)
            row[kind] = {
                "p50_ms": _pct(lat, 0.5),
                "p99_ms": _pct(lat, 0.99),
                "per_s": len(lat) / span,
                "errors": errors,
            }
        out[window] = row
    return out


def show(name: str, figures: dict) -> None:
    for window, row in figures.items():
        for kind, f in row.items():
            print(
                f"{name:10s} {window:10s} {kind:6s} p50 {f['p50_ms']:8.1f} ms  p99 "
                f"{f['p99_ms']:8.1f} ms  {f['per_s']:8.1f} req/s  errors {f['errors']}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=1, help="terrapipe serve --workers")
    parser.add_argument("--jobs", type=int, default=4, help="terrapipe serve --jobs")
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="pace the clients to this many requests/s in all (default: closed loop)",
    )
    parser.add_argument(
        "--client-processes",
        type=int,
        default=4,
        help="processes the client threads are spread over (1: all in this one)",
    )
    parser.add_argument("--anchor", choices=["pygeoapi", "none"], default="none")
    args = parser.parse_args()
    mode = f"paced to {args.rate:g} req/s" if args.rate else "closed loop"
    print(
        f"{args.clients} clients in {args.client_processes} processes, {args.seconds:g} s, {mode}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_terrapipe(Path(tmp) / "home", args.workers, args.jobs)
        try:
            before = tree_cpu(proc.pid)
            ours, client_cpu = measure(
                url, "noop", {}, args.clients, args.seconds, args.rate, args.client_processes
            )
            after = tree_cpu(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        show("terrapipe", ours)
        requests = sum(ours["all"][k]["per_s"] for k in ("submit", "status")) * args.seconds
        jobs = ours["all"]["submit"]["per_s"] * args.seconds
        server = (after["server"] - before["server"]) / max(requests, 1)
        runner = (after["runner"] - before["runner"]) / max(jobs, 1)
        client = client_cpu / max(requests, 1)
        print(
            f"CPU: server {server * 1e6:.0f} us/request, runner {runner * 1e6:.0f} us/job, "
            f"clients {client * 1e6:.0f} us/request"
        )
        if args.anchor == "pygeoapi":
            aproc, aurl = start_pygeoapi(Path(tmp))
            try:
                anchor, _ = measure(
                    aurl,
                    "hello-world",
                    {"name": "x"},
                    args.clients,
                    args.seconds,
                    args.rate,
                    args.client_processes,
                )
            finally:
                aproc.send_signal(signal.SIGTERM)
                aproc.wait(30)
            show("pygeoapi", anchor)
            for kind in ("submit", "status"):
                ratio = ours["all"][kind]["per_s"] / max(anchor["all"][kind]["per_s"], 1e-9)
                print(f"ratio {kind} req/s terrapipe / pygeoapi: {ratio:.1f}x")


if __name__ == "__main__":
    main()
