"""Workflows the API tests serve (loaded as a user module, as `serve --module` would)."""

from __future__ import annotations

import time
from pathlib import Path

from terrapipe import Workflow, task


@task(version=1)
def numbers(n: int, scale: float = 1.0) -> list[float]:
    return [i * scale for i in range(n)]


@task(version=1)
def total(numbers: list[float]) -> float:
    return float(sum(numbers))


sums = Workflow("sums", version=1, description="Sum of the first n numbers times scale.")
sums.add_node(numbers)
sums.add_node(total, numbers)


@task(version=1)
def wc(ctx, source: Path) -> dict:
    text = Path(source).read_text()
    out = ctx.artifact_path("count.txt")
    out.write_text(str(len(text.split())))
    return {"words": len(text.split()), "file": out}


count_words = Workflow("count-words", version=1)
count_words.add_node(wc)


@task(version=1)
def nap(ctx, seconds: float = 30.0) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ctx.check_cancelled()
        time.sleep(0.05)
    return "rested"


slow = Workflow("slow", version=1)
slow.add_node(nap)


@task(version=1)
def summary(n: int = 3) -> int:
    return n * 2


@task(version=1, applicable=lambda ctx: ctx.params["detailed"])
def details(detailed: bool = False) -> list[int]:
    return [1, 2, 3]


optional_output = Workflow("optional-output", version=1)
optional_output.add_node(summary)
optional_output.add_node(details)
