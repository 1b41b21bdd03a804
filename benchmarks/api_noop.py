"""A no-op process for benchmarks/api_latency.py (loaded with `terrapipe serve --module`)."""

from terrapipe import Workflow, task


@task(version=1)
def nothing() -> int:
    return 1


noop = Workflow("noop", version=1, description="Does nothing: measures the service itself.")
noop.add_node(nothing)
