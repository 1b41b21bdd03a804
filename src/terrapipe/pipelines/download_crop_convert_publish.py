"""``download-crop-convert-publish`` — the dataset chain over a catalog query.

Built in :mod:`terrapipe.transfer.workflow` (its docstring draws the graph); registered
here with the other built-in workflows.
"""

from terrapipe.transfer.workflow import build_workflow

workflow = build_workflow()
