"""The registry of adapter kinds: the one place that lists them. Adding a kind = its module + one entry here."""

from __future__ import annotations

from qadapter.adapters.kinds import identity, linear, lowrank, mlp
from qadapter.adapters.kinds.base import AdapterKind

REGISTRY: dict[str, AdapterKind] = {
    kind.name: kind
    for kind in (
        identity.KIND,
        linear.KIND,
        lowrank.KIND,
        mlp.KIND,
    )
}
#: the kinds training can fit (every kind except the identity), in registry order
TRAINABLE_KINDS = tuple(name for name, kind in REGISTRY.items() if kind.trainable)
#: the kinds that export to a Sentence Transformers folder
EXPORTABLE_KINDS = tuple(name for name, kind in REGISTRY.items() if kind.exportable)
