"""Words that must stand next to a number: when the test queries are offline pseudo-queries, the score says little.

Offline pseudo-queries are cut from the documents themselves (:mod:`qadapter.generate.offline`); an adapter that
learns to find a chunk from its own sentences can look strong on them and still not help real questions. The share is
read from each query's provenance metadata (``generator``), so any mix of sources is reported honestly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def offline_share(query_ids: Iterable[str], queries: Mapping[str, Any]) -> float:
    """Share of ``query_ids`` whose metadata names the offline pseudo-query generator (0.0 for no queries)."""
    from qadapter.generate.offline import GENERATOR

    ids = list(query_ids)
    offline = sum(
        1
        for q in ids
        if q in queries and (getattr(queries[q], "metadata", None) or {}).get("generator") == GENERATOR
    )
    return offline / len(ids) if ids else 0.0


def pseudo_query_caveat(share: float | None) -> str | None:
    """The sentence shown next to the headline number when any test query is an offline pseudo-query, else None."""
    if not share:
        return None
    amount = "All" if share >= 0.9995 else f"{100 * share:.0f}%" if share >= 0.005 else "Under 1%"
    return (
        f"{amount} of these test queries are offline pseudo-queries cut from the documents; "
        "they do not predict real questions."
    )
