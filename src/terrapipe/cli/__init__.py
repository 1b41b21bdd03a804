"""Command-line interface (typer + rich). Commands are thin: parse, call a service, print."""
