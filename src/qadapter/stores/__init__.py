"""Vector stores behind one small interface: read a collection's stored vectors, query it with adapted vectors.

Backends load lazily, so ``import qadapter.stores`` imports no database client. Use :func:`get_store`::

    store = get_store("chroma", "path/to/chroma", "my_collection")
    ids, documents, embeddings = store.read()
"""

from __future__ import annotations

from qadapter.stores.base import Hits, Page, StoreSpec, VectorStore
from qadapter.stores.registry import STORES, get_store, store_run

__all__ = ["STORES", "Hits", "Page", "StoreSpec", "VectorStore", "get_store", "store_run"]
