"""The process's background flusher: one thread flushes every running run's records."""

from __future__ import annotations

import threading
import time

from terrapipe.core.flusher import Flusher


def _wait_until(check, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.005)
    return False


def test_every_registered_run_is_flushed_on_one_thread_until_removed() -> None:
    flusher = Flusher(0.01)
    calls = {"a": 0, "b": 0}
    threads: set[str] = set()

    def flush(name: str):
        def go() -> None:
            calls[name] += 1
            threads.add(threading.current_thread().name)

        return go

    a, b = flusher.add(flush("a")), flusher.add(flush("b"))
    assert _wait_until(lambda: calls["a"] >= 3 and calls["b"] >= 3)
    assert threads == {"terrapipe-writer"}
    flusher.remove(a)
    seen = calls["a"]
    assert _wait_until(lambda: calls["b"] >= calls["a"] + 3)
    assert calls["a"] == seen  # never again after remove
    flusher.remove(b)


def test_remove_waits_for_a_flush_in_progress() -> None:
    flusher = Flusher(0.01)
    started, finished = threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        time.sleep(0.2)
        finished.set()

    entry = flusher.add(slow)
    assert started.wait(5)
    flusher.remove(entry)
    assert finished.is_set()  # remove returned only once the flush had ended


def test_a_failing_flush_does_not_stop_the_others(caplog) -> None:
    flusher = Flusher(0.01)
    good = []

    def bad() -> None:
        raise RuntimeError("database gone")

    broken = flusher.add(bad)
    fine = flusher.add(lambda: good.append(1))
    assert _wait_until(lambda: len(good) >= 3)
    assert "background flush failed" in caplog.text
    flusher.remove(broken)
    flusher.remove(fine)


def test_many_local_runs_share_one_writer_thread(tp_home) -> None:
    from terrapipe import Workflow, submit, task

    @task
    def slow_enough(i: int) -> int:
        time.sleep(0.01)
        return i

    wf = Workflow("flusher-share")
    wf.add_node(slow_enough)
    before = {t.ident for t in threading.enumerate() if t.name == "terrapipe-writer"}
    for i in range(5):
        assert submit(wf, {"i": i}).state == "succeeded"
    writers = {t.ident for t in threading.enumerate() if t.name == "terrapipe-writer"}
    assert len(writers - before) <= 1  # the shared one, if no earlier run started it
