"""Per-node overhead of the local engine with the SQLite run store.

Graphs of N no-op nodes: a chain, and a fan-out of N mapped items. Prints the median of 3
per-node cost for a first run (everything recorded) and a fully cached rerun, and the ratio
to calling the same N functions directly and to dask's threaded scheduler on the same graph.

    .venv/bin/python benchmarks/engine_overhead.py [--nodes 10000] [--repeat 3]

Targets (issue 2): <= 0.5 ms/node on a first run, <= 0.1 ms/node on a cached rerun.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time


def noop(*args, **kwargs):
    return 1


def build_chain(n: int):
    from terrapipe import Workflow
    from terrapipe.core.task import FunctionTask

    wf = Workflow(f"bench-chain-{n}")
    prev = None
    t = FunctionTask(lambda: 1, name="noop")
    for i in range(n):
        prev = wf.add_node(t, prev, name=f"n{i}")
    return wf


def build_fanout(n: int):
    from terrapipe import Workflow, task

    @task
    def items(count: int = n) -> list[int]:
        return list(range(count))

    @task
    def each(item: int) -> int:
        return item

    wf = Workflow(f"bench-fanout-{n}")
    wf.add_node(items)
    wf.add_node(each, items, map_over=True)
    return wf


def time_terrapipe(build, n: int, repeat: int, workers: int) -> tuple[list[float], list[float]]:
    from terrapipe.runs import submit
    from terrapipe.settings import get_settings

    first, cached = [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as home:
            os.environ["TERRAPIPE_HOME"] = home
            settings = get_settings()
            wf = build(n)
            submit(build(2), settings=settings)  # create + migrate the database outside timing
            t0 = time.perf_counter()
            run = submit(wf, workers=workers, settings=settings)
            first.append(time.perf_counter() - t0)
            assert run.state == "succeeded", run.error
            t0 = time.perf_counter()
            run = submit(wf, workers=workers, settings=settings)
            cached.append(time.perf_counter() - t0)
            assert set(run.counts()) == {"cached"}, run.counts()
    return first, cached


def time_direct(n: int, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = 0
        for _i in range(n):
            value = noop(value)
        out.append(time.perf_counter() - t0)
    return out


def time_dask(kind: str, n: int, repeat: int, optimize: bool) -> list[float] | None:
    try:
        import dask
        from dask.threaded import get
    except ImportError:
        return None
    if kind == "chain":
        graph = {"n0": (noop,)}
        for i in range(1, n):
            graph[f"n{i}"] = (noop, f"n{i - 1}")
        keys = [f"n{n - 1}"]
    else:
        graph = {"items": (list, (range, n))}
        for i in range(n):
            graph[f"e{i}"] = (noop, "items", i)
        keys = [f"e{i}" for i in range(n)]
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        if optimize:
            from dask.optimization import cull, fuse

            g, _deps = cull(graph, keys)
            g, _deps = fuse(g, keys)
            get(g, keys)
        else:
            get(graph, keys)
        out.append(time.perf_counter() - t0)
    _ = dask
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    n = args.nodes
    direct = statistics.median(time_direct(n, args.repeat))
    print(f"{n} no-op nodes, median of {args.repeat}, workers={args.workers}, SQLite store")
    print(f"direct calls: {direct / n * 1e6:.3f} µs/call")
    for kind, build in (("chain", build_chain), ("fan-out", build_fanout)):
        first, cached = time_terrapipe(build, n, args.repeat, args.workers)
        f_ms = statistics.median(first) / n * 1e3
        c_ms = statistics.median(cached) / n * 1e3
        line = (
            f"{kind:8s} first run {f_ms:.3f} ms/node (target 0.5)  "
            f"cached rerun {c_ms:.3f} ms/node (target 0.1)  "
            f"x{f_ms / (direct / n * 1e3):.0f} direct"
        )
        for optimize in (False, True):
            tag = "dask+opt" if optimize else "dask"
            try:
                d = time_dask("chain" if kind == "chain" else "fanout", n, args.repeat, optimize)
            except RecursionError:
                line += f"  | {tag}: RecursionError on this graph"
                continue
            if d is not None:
                d_ms = statistics.median(d) / n * 1e3
                line += f"  | {tag} {d_ms:.3f} ms/node, first run x{f_ms / d_ms:.1f}"
        print(line)


if __name__ == "__main__":
    main()
