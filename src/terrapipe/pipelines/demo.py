"""``demo``: a tiny workflow that shows fan-out, reduce, artifacts and caching.

    numbers ──map──> square (one per number) ──> total ──> report (an artifact file)

Run it twice: the second run executes nothing and every node says ``cached``. Add a
number (``-p n=6``) and only the new ``square`` instance and what depends on it run.
"""

from __future__ import annotations

from terrapipe.core.context import Context
from terrapipe.core.task import Param, Task, task
from terrapipe.core.workflow import Workflow


@task(version=1)
def numbers(n: int = 5) -> list[int]:
    """The numbers 1..n to fan out over."""
    return list(range(1, n + 1))


@task(version=1)
def square(ctx: Context, item: int, delay: float = 0.05) -> int:
    """Square one number (slowly, so caching is visible)."""
    ctx.sleep(delay)
    return item * item


@task(version=1)
def total(square: list[int]) -> int:
    """Reduce: the sum of all squares."""
    return sum(square)


class Report(Task):
    """Write the result to a text file, an artifact stored only when the task succeeds."""

    name = "report"
    version = 1
    params = {"title": Param(str, default="Sum of squares", help="Heading of the report")}

    def run(self, ctx: Context) -> dict[str, object]:
        path = ctx.artifact_path("report.txt")
        path.write_text(f"{ctx.params['title']}: {ctx.inputs['total']}\n")
        return {"total": ctx.inputs["total"], "file": path}

    def summary(self, ctx: Context) -> dict[str, object]:
        return {"total": ctx.inputs["total"]}


demo = Workflow("demo", version=1, category="examples", description=__doc__.splitlines()[0])
demo.add_node(numbers)
demo.add_node(square, numbers, map_over=True)
demo.add_node(total, square)
demo.add_node(Report(), total)
