"""The ``qadapter`` command line (:mod:`qadapter.cli.main`); each command lives in its own module, imported lazily."""

from qadapter.cli.main import COMMANDS, cli, main

__all__ = ["COMMANDS", "cli", "main"]
