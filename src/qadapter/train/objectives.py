"""What the default recipe's selection maximises: the objectives, listed once, validated once.

The CLI's ``--objective`` choices and help, the error for an unknown name and the selection all read
:data:`OBJECTIVES`.
"""

from __future__ import annotations

from collections.abc import Sequence

from qadapter.errors import QadapterError

NEW, SEEN = "new-documents", "seen-documents"
AUTO = "auto"
#: with at least this share of the corpus covered by training queries, objective ``auto`` means ``covered``
AUTO_COVERED = 0.95

#: name -> what it means (the CLI help reads these)
OBJECTIVES: dict[str, str] = {
    AUTO: f"covered when training queries cover at least {AUTO_COVERED:.0%} of the corpus, else balanced",
    "balanced": "equal weight to queries about documents with and without training queries, refusing maps that hurt "
    "the latter",
    "seen": "maximise gains on documents that have training queries, refusing maps that hurt the others",
    "covered": "weigh both by their share of the corpus, reporting (not refusing) harm to documents without training "
    "queries",
}


def check_objective(name: str) -> str:
    """``name`` if it is an objective, else one :class:`QadapterError` listing them (the only such check)."""
    if name not in OBJECTIVES:
        raise QadapterError(
            f"unknown objective {name!r}; valid objectives: {', '.join(OBJECTIVES)} (--objective)"
        )
    return name


def resolve_objective(name: str, coverage: float) -> str:
    """The concrete objective: ``auto`` becomes ``covered`` when (nearly) every document has training queries (what
    matters then is new questions about them), else ``balanced``."""
    check_objective(name)
    if name != AUTO:
        return name
    return "covered" if coverage >= AUTO_COVERED else "balanced"


def part_weights(objective: str, coverage: float, names: Sequence[str]) -> dict[str, float]:
    """How much each validation part counts towards ``objective`` (weights sum to 1)."""
    if len(names) == 1:
        return {names[0]: 1.0}
    if objective == "covered":
        return {SEEN: coverage, NEW: 1.0 - coverage}
    if objective == "seen":
        return {n: float(n != NEW) for n in names}
    return {n: 1.0 / len(names) for n in names}
