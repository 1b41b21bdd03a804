"""Built-in workflows, one module each; the module docstring explains the workflow's shape."""
