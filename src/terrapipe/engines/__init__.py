"""Engines decide where and when node instances execute; all call ``execute_node``."""
