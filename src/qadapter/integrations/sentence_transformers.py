"""Export an adapter as a standard Sentence Transformers model folder.

The folder wraps the base model in a ``Router`` (sentence-transformers >= 5) with two routes over the *same*
base modules (saved once): ``document`` is the base model unchanged, ``query`` is the base model followed by one
built-in ``Dense`` layer (identity activation) holding the adapter. So::

    model = SentenceTransformer("exported")     # needs only sentence-transformers, no qadapter
    model.encode_query(queries)                 # adapter(base query vectors)
    model.encode_document(docs)                 # base vectors, identical to the base model
    model.encode(texts)                         # base vectors too (the default route is "document")

Caveat: queries must go through ``encode_query`` (or ``encode(..., task="query")``); plain ``encode`` gives base
vectors, which still work with the existing index but without the adapter's gain.

The adapter is applied exactly as qadapter applies it: to the base model's output (unit length for models that end
with ``Normalize``, like all-MiniLM-L6-v2), with no normalisation after it, so ``encode_query`` equals
``adapter.transform(base query vectors)``. Adapted query vectors are therefore not unit length; search with cosine
similarity (the model's similarity function) or pass ``normalize_embeddings=True``, which does not change rankings.

Kinds: each kind's export rule is its ``affine`` (:mod:`qadapter.adapters.kinds`): ``linear`` is one ``Dense``
layer; ``lowrank`` is folded into one ``d x d`` ``Dense`` layer (``W = I + up @ down``); ``identity`` adds no layer.
``mlp`` adapters use a residual tanh-GELU network that the built-in modules cannot reproduce exactly, so they are
refused with a clear error.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from qadapter.adapters import Adapter
from qadapter.adapters.kinds import EXPORTABLE_KINDS, REGISTRY
from qadapter.data.atomic import atomic_dir
from qadapter.encoders import Encoder
from qadapter.errors import QadapterError
from qadapter.integrations._common import resolve
from qadapter.version import __version__

logger = logging.getLogger(__name__)

EXPORT_INFO_FILE = "qadapter_export.json"


def adapter_as_affine(adapter: Adapter) -> tuple[np.ndarray, np.ndarray] | None:
    """The adapter as ``(W, b)`` with ``transform(x) == x @ W.T + b``; ``None`` for the identity.

    The rule is the kind's own (its ``affine`` in :mod:`qadapter.adapters.kinds`); kinds without one (``mlp``) are
    refused with a :class:`QadapterError` that says why.
    """
    kind = REGISTRY[adapter.kind]
    if kind.affine is None:
        raise QadapterError(
            f"a '{adapter.kind}' adapter cannot be exported to Sentence Transformers: {kind.export_refusal} "
            f"(exportable kinds: {', '.join(EXPORTABLE_KINDS)}); train with --kind "
            f"{' or --kind '.join(k for k in EXPORTABLE_KINDS if REGISTRY[k].trainable)}, or serve it with 'qadapter serve'"
        )
    return kind.affine(adapter.tensors, adapter.dim)


def _modules() -> tuple[Any, Any]:
    """``(Dense, Router)`` from the module path of the installed sentence-transformers (6.x moved them)."""
    import importlib

    try:
        modules = importlib.import_module("sentence_transformers.sentence_transformer.modules")
    except ImportError:
        modules = importlib.import_module("sentence_transformers.models")
    return modules.Dense, modules.Router


def build_sentence_transformer(adapter: Adapter, encoder: Encoder) -> Any:
    """A ``SentenceTransformer`` whose query route applies ``adapter`` after ``encoder``'s base modules."""
    affine = adapter_as_affine(adapter)  # refuse non-affine kinds before importing torch

    import torch
    from sentence_transformers import SentenceTransformer

    base = getattr(encoder, "model", None)
    if not isinstance(base, SentenceTransformer):
        raise QadapterError(
            f"exporting to Sentence Transformers needs a Sentence Transformers base model, got '{encoder.name}'; "
            "for an embeddings endpoint, serve the adapter with 'qadapter serve' instead"
        )
    if adapter.dim != encoder.dim:
        raise QadapterError(
            f"the adapter is for {adapter.dim}-dimensional embeddings, the model gives {encoder.dim}"
        )
    Dense, Router = _modules()
    base_modules = list(base.children())
    if any(isinstance(m, Router) for m in base_modules):
        raise QadapterError(
            f"the base model '{encoder.name}' already routes queries and documents (it has a Router module); "
            "exporting an adapter on top of it is not supported"
        )
    query_modules = list(base_modules)
    if affine is not None:
        weight, bias = affine
        query_modules.append(
            Dense(
                adapter.dim,
                adapter.dim,
                bias=True,
                activation_function=torch.nn.Identity(),
                init_weight=torch.tensor(weight, dtype=torch.float32),
                init_bias=torch.tensor(bias, dtype=torch.float32),
            )
        )
    router = Router.for_query_document(
        query_modules=query_modules, document_modules=base_modules, default_route="document"
    )
    return SentenceTransformer(
        modules=[router],
        device="cpu",
        prompts={k: v for k, v in (base.prompts or {}).items() if v is not None},
        default_prompt_name=base.default_prompt_name,
        similarity_fn_name=base.similarity_fn_name or "cosine",
    )


def export_sentence_transformers(
    adapter: Adapter | str | Path,
    output: str | Path,
    *,
    encoder: Encoder | str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a Sentence Transformers folder at ``output`` whose ``encode_query`` applies ``adapter``.

    ``adapter`` is an :class:`Adapter` or a saved adapter folder; ``encoder`` defaults to the adapter's base model.
    The folder is written atomically and never replaces an existing one unless ``overwrite=True``.
    """
    output = Path(output)
    if output.exists() and not overwrite:  # fail before loading the model; atomic_dir checks again
        raise QadapterError(f"{output} already exists; choose another output folder or pass --overwrite")
    adapter, encoder, adapter_path = resolve(adapter, encoder)
    model = build_sentence_transformer(adapter, encoder)
    with atomic_dir(output, overwrite=overwrite) as tmp:
        model.save(str(tmp), create_model_card=False)
        info = {
            "format": "qadapter.sentence_transformers_export",
            "format_version": 1,
            "qadapter_version": __version__,
            "adapter_kind": adapter.kind,
            "adapter_path": str(adapter_path) if adapter_path else None,
            "base_model": {"name": encoder.name, "dim": encoder.dim},
            "query_route": "base model + adapter (encode_query)",
            "document_route": "base model unchanged (encode_document, encode)",
        }
        (tmp / EXPORT_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
        (tmp / "README.md").write_text(_card(adapter, encoder.name))
    logger.info("exported the %s adapter with base model %s to %s", adapter.kind, encoder.name, output)
    return output


def _card(adapter: Adapter, base_name: str) -> str:
    return f"""---
library_name: sentence-transformers
tags:
- sentence-transformers
- qadapter
---

# {base_name} + qadapter query adapter ({adapter.kind})

The base model `{base_name}` with a query-side adapter trained by qadapter {__version__}. Documents are embedded
exactly as by the base model, so an existing index built with `{base_name}` stays valid.

```python
from sentence_transformers import SentenceTransformer

model = SentenceTransformer("path/to/this/folder")
query_vectors = model.encode_query(["how do I ...?"])   # adapted
doc_vectors = model.encode_document(["some passage"])     # unchanged base vectors
```

**Use `encode_query` for queries.** Plain `encode` and `encode_document` return base vectors (no adapter).
Adapted query vectors are not unit length: compare them by cosine similarity (rankings are the same as with
`normalize_embeddings=True`).
"""
