"""The lab: experiments on top of the library (grids, runner, report, statistics, bench).

The core never imports it (the import-linter contract in pyproject.toml)."""
