"""The evaluate stage: the base model and the adapter scored on the same held-out queries (see ``evaluation``)."""

from qadapter.evaluate.caveats import offline_share, pseudo_query_caveat
from qadapter.evaluate.evaluation import evaluate
from qadapter.evaluate.retrieval import EVAL_STORES

__all__ = ["EVAL_STORES", "evaluate", "offline_share", "pseudo_query_caveat"]
