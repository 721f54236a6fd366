"""Which documents a training query is contrasted against, and which of those must not count as negatives.

Negatives come from the user's own corpus, restricted to *training documents* (those with at least one training
query): a document that never had a query is neither pulled toward nor pushed away from any query, so the adapter
does not learn to avoid documents added after training. When the training documents fit (``max_full_negatives``)
every query is contrasted against all of them; otherwise against its hard negatives (the base model's top-ranked
non-relevant documents) plus a random sample shared by the batch.

False negatives are masked: other documents judged relevant for the same query, and near-duplicates of the positive
(base-model cosine at least ``false_negative_threshold``), which are common in chunked corpora.

Memory and time stay bounded at any size: the near-duplicate pass streams over blocks of positives and training
documents, hard negatives come from the blockwise search (or an approximate index above
:data:`qadapter.core.ann.ANN_ABOVE` documents, where near-duplicates are looked for among each positive's
:data:`NEAR_DUP_NEIGHBOURS` nearest documents), everything else is vectorised. The last plans are memoised by the
identity of the input arrays, so the candidates of one search, which share their training set, mine it once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qadapter.core.ann import nearest, use_ann

#: with an approximate index, near-duplicates are looked for among this many nearest documents of each positive
NEAR_DUP_NEIGHBOURS = 16
#: block sizes of the exact near-duplicate pass (a block of similarities is POS_BLOCK x DOC_BLOCK float32)
POS_BLOCK, DOC_BLOCK = 1024, 16_384
#: plans kept in the memo
MEMO_SIZE = 2


@dataclass
class NegativePlan:
    """Training documents as columns, plus what each pair must not be contrasted against."""

    columns: np.ndarray  # corpus rows of the training documents
    pair_query: np.ndarray  # (n_pairs,) query row of each (query, positive) pair
    pair_pos_col: np.ndarray  # (n_pairs,) column of the positive
    excluded_ptr: np.ndarray  # CSR: pair i must not be contrasted against excluded_cols[ptr[i]:ptr[i + 1]]
    excluded_cols: np.ndarray
    hard: np.ndarray | None  # (n_queries, n_hard) hard-negative columns per query, or None in full mode
    full: bool

    @property
    def excluded(self) -> list[np.ndarray]:
        """Per pair: the sorted columns that must not be its negatives (other positives, near-duplicates)."""
        p = self.excluded_ptr
        return [self.excluded_cols[p[i] : p[i + 1]] for i in range(len(p) - 1)]


_MEMO: list[tuple[tuple[object, ...], np.ndarray, np.ndarray, NegativePlan]] = []


def plan_negatives(
    query_embeddings: np.ndarray,
    doc_embeddings: np.ndarray,
    pairs: Sequence[tuple[int, int]] | np.ndarray,
    *,
    max_full: int = 20_000,
    n_hard: int = 32,
    false_negative_threshold: float = 0.98,
    ann: str = "auto",
) -> NegativePlan:
    """The negative plan of a training set; the same inputs (same array objects, equal pairs) give the memoised plan."""
    pairs_arr = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    digest = hashlib.blake2b(pairs_arr.tobytes(), digest_size=16).hexdigest()
    key = (id(query_embeddings), id(doc_embeddings), digest, max_full, n_hard, false_negative_threshold, ann)
    for held_key, held_q, held_d, plan in _MEMO:
        if held_key == key and held_q is query_embeddings and held_d is doc_embeddings:
            return plan
    plan = _plan(query_embeddings, doc_embeddings, pairs_arr, max_full, n_hard, false_negative_threshold, ann)
    _MEMO.insert(0, (key, query_embeddings, doc_embeddings, plan))
    del _MEMO[MEMO_SIZE:]
    return plan


def _plan(
    Q: np.ndarray,
    D: np.ndarray,
    pairs_arr: np.ndarray,
    max_full: int,
    n_hard: int,
    threshold: float,
    ann: str,
) -> NegativePlan:
    columns, pos_cols = np.unique(pairs_arr[:, 1], return_inverse=True)
    pos_cols = pos_cols.astype(np.int64).reshape(-1)
    # the training documents themselves when they are the whole corpus: no copy, and an index shared with validation
    cand = D if len(columns) == len(D) else D[columns]
    dup_src, dup_dst = _near_duplicates(cand, np.unique(pos_cols), threshold, ann)
    ptr, flat = _excluded(pairs_arr[:, 0], pos_cols, dup_src, dup_dst, len(columns))
    full = len(columns) <= max_full
    hard = None if full else _hard_negatives(Q, cand, pairs_arr[:, 0], pos_cols, n_hard, ann)
    return NegativePlan(columns, pairs_arr[:, 0], pos_cols, ptr, flat, hard, full)


def _near_duplicates(
    cand: np.ndarray, positives: np.ndarray, threshold: float, ann: str
) -> tuple[np.ndarray, np.ndarray]:
    """(positive column, other column) pairs with cosine >= ``threshold``, sorted by positive column."""
    src: list[np.ndarray] = []
    dst: list[np.ndarray] = []
    if use_ann(len(cand), ann):
        idx, scores = nearest(cand[positives], cand, k=NEAR_DUP_NEIGHBOURS, ann=ann)
        rows, cols = np.nonzero((scores >= threshold) & (idx >= 0))
        src.append(positives[rows])
        dst.append(idx[rows, cols])
    else:
        from qadapter.core.vectors import normalize

        for ps in range(0, len(positives), POS_BLOCK):
            block = positives[ps : ps + POS_BLOCK]
            a = normalize(cand[block])
            for ds in range(0, len(cand), DOC_BLOCK):
                rows, cols = np.nonzero(a @ normalize(cand[ds : ds + DOC_BLOCK]).T >= threshold)
                src.append(block[rows])
                dst.append(cols + ds)
    s = np.concatenate(src) if src else np.zeros(0, dtype=np.int64)
    d = np.concatenate(dst) if dst else np.zeros(0, dtype=np.int64)
    keep = s != d
    order = np.lexsort((d[keep], s[keep]))
    return s[keep][order].astype(np.int64), d[keep][order].astype(np.int64)


def _expand(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ranges ``[starts[i], starts[i] + lengths[i])``: (owner i, position) of every element."""
    owner = np.repeat(np.arange(len(starts)), lengths)
    offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return owner, np.repeat(starts, lengths) + offsets


def _excluded(
    pair_q: np.ndarray, pos_cols: np.ndarray, dup_src: np.ndarray, dup_dst: np.ndarray, n_cols: int
) -> tuple[np.ndarray, np.ndarray]:
    """CSR (ptr, columns) of each pair's false negatives: the query's other positives and the positive's
    near-duplicates, sorted and unique per pair."""
    n = len(pair_q)
    by_q = np.argsort(pair_q, kind="stable")
    sorted_q = pair_q[by_q]
    first = np.searchsorted(sorted_q, pair_q, side="left")
    last = np.searchsorted(sorted_q, pair_q, side="right")
    owner_a, pos_a = _expand(first, last - first)
    other = pos_cols[by_q[pos_a]]
    lo = np.searchsorted(dup_src, pos_cols, side="left")
    hi = np.searchsorted(dup_src, pos_cols, side="right")
    owner_b, pos_b = _expand(lo, hi - lo)
    owner = np.concatenate([owner_a, owner_b])
    cols = np.concatenate([other, dup_dst[pos_b]])
    keep = cols != pos_cols[owner]
    code = np.unique(owner[keep] * np.int64(max(n_cols, 1)) + cols[keep])
    owner, cols = code // max(n_cols, 1), code % max(n_cols, 1)
    ptr = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=n))]).astype(np.int64)
    return ptr, cols.astype(np.int64)


def _hard_negatives(
    Q: np.ndarray, cand: np.ndarray, pair_q: np.ndarray, pos_cols: np.ndarray, n_hard: int, ann: str
) -> np.ndarray:
    """Per query: its ``n_hard`` best-ranked training documents that are not its positives (random columns when
    too few are left)."""
    n_queries = int(pair_q.max()) + 1
    k = min(n_hard + 8, len(cand))
    idx, _ = nearest(Q[:n_queries], cand, k=k, ann=ann)
    bad = idx < 0
    np.logical_or.at(bad, pair_q, idx[pair_q] == pos_cols[:, None])
    order = np.argsort(bad, axis=1, kind="stable")[:, :n_hard]
    picks = np.take_along_axis(idx, order, axis=1)
    short = np.take_along_axis(bad, order, axis=1)
    if picks.shape[1] < n_hard:
        pad = n_hard - picks.shape[1]
        picks = np.concatenate([picks, np.zeros((n_queries, pad), dtype=np.int64)], axis=1)
        short = np.concatenate([short, np.ones((n_queries, pad), dtype=bool)], axis=1)
    rng = np.random.default_rng(0)
    picks[short] = rng.integers(len(cand), size=int(short.sum()))
    return picks.astype(np.int64)


def excluded_pairs(plan: NegativePlan, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row in batch, excluded column) for every false negative of the pairs in ``batch``."""
    starts, ends = plan.excluded_ptr[batch], plan.excluded_ptr[batch + 1]
    lengths = ends - starts
    if not lengths.sum():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    rows, positions = _expand(starts, lengths)
    return rows, plan.excluded_cols[positions]
