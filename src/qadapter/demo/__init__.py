"""Data for the offline demo: a real retrieval task built from text every Python installation ships with."""

from qadapter.demo.stdlib_docs import DEFAULT_MODULES, build_stdlib_workspace

__all__ = ["DEFAULT_MODULES", "build_stdlib_workspace"]
