"""Which documents a training query is contrasted against, and which of those must not count as negatives.

Negatives come from the user's own corpus, restricted to *training documents* (those with at least one training
query): a document that never had a query is neither pulled toward nor pushed away from any query, so the adapter
does not learn to avoid documents added after training. When the training documents fit (``max_full_negatives``)
every query is contrasted against all of them; otherwise against its hard negatives (the base model's top-ranked
non-relevant documents) plus a random sample shared by the batch.

False negatives are masked: other documents judged relevant for the same query, and near-duplicates of the positive
(base-model cosine at least ``false_negative_threshold``), which are common in chunked corpora.

Memory and time stay bounded at any size. In full mode the near-duplicate pass streams over blocks of positives and
training documents. In sampled mode nothing grows with the square of the corpus: hard negatives come from the
blockwise search (or an approximate index above :data:`qadapter.core.ann.MINE_ANN_ABOVE` training documents) for the
queries of the pairs only, near-duplicates are checked where a negative can come from (each query's hard negatives
here, the batch's shared columns in the loss), everything else is vectorised. The last plans are memoised by the
identity of the input arrays, so the candidates of one search, which share their training set, mine it once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qadapter.core.ann import MINE_ANN_ABOVE, MINE_NPROBE, nearest

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
    #: base-model cosine to a positive from which a document is a near-duplicate, never a negative (in sampled mode
    #: the loss checks the batch's shared columns against it; hard negatives were filtered with it)
    threshold: float = 0.98

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
    columns: np.ndarray | None = None,
    device: str | None = None,
) -> NegativePlan:
    """The negative plan of a training set; the same inputs (same array objects, equal pairs) give the memoised plan.

    ``columns`` (sorted corpus rows) are the documents negatives come from when ``pairs`` are a sample of a larger
    training set (default: the documents of ``pairs``); it must include every positive of ``pairs``. ``device`` runs
    an exact hard-negative search in torch there (the training device; an approximate index runs where it lives)."""
    pairs_arr = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    hasher = hashlib.blake2b(pairs_arr.tobytes(), digest_size=16)
    if columns is not None:
        hasher.update(np.asarray(columns, dtype=np.int64).tobytes())
    key = (
        id(query_embeddings),
        id(doc_embeddings),
        hasher.hexdigest(),
        max_full,
        n_hard,
        false_negative_threshold,
        ann,
    )
    for held_key, held_q, held_d, plan in _MEMO:
        if held_key == key and held_q is query_embeddings and held_d is doc_embeddings:
            return plan
    settings = (max_full, n_hard, false_negative_threshold, ann)
    plan = _plan(query_embeddings, doc_embeddings, pairs_arr, settings, columns, device)
    _MEMO.insert(0, (key, query_embeddings, doc_embeddings, plan))
    del _MEMO[MEMO_SIZE:]
    return plan


def _plan(
    Q: np.ndarray,
    D: np.ndarray,
    pairs_arr: np.ndarray,
    settings: tuple[int, int, float, str],
    columns: np.ndarray | None,
    device: str | None = None,
) -> NegativePlan:
    max_full, n_hard, threshold, ann = settings
    if columns is None:
        columns, pos_cols = np.unique(pairs_arr[:, 1], return_inverse=True)
    else:
        columns = np.asarray(columns, dtype=np.int64)
        pos_cols = np.searchsorted(columns, pairs_arr[:, 1])
        if not np.array_equal(columns[np.minimum(pos_cols, len(columns) - 1)], pairs_arr[:, 1]):
            raise ValueError("columns must be sorted and include every positive document of the pairs")
    pos_cols = pos_cols.astype(np.int64).reshape(-1)
    full = len(columns) <= max_full
    hard = None
    no_dups = np.zeros(0, dtype=np.int64)
    if full:
        dup_src, dup_dst = _near_duplicates(D[columns], np.unique(pos_cols), threshold)
    else:
        # near-duplicates are checked where they can be drawn: among each query's hard negatives (here) and the
        # batch's shared columns (in the loss), instead of a pass over all pairs of training documents
        dup_src, dup_dst = no_dups, no_dups
        hard = _hard_negatives(Q, D, columns, (pairs_arr[:, 0], pos_cols), n_hard, (ann, threshold, device))
    ptr, flat = _excluded(pairs_arr[:, 0], pos_cols, dup_src, dup_dst, len(columns))
    return NegativePlan(columns, pairs_arr[:, 0], pos_cols, ptr, flat, hard, full, threshold)


def _near_duplicates(
    cand: np.ndarray, positives: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """(positive column, other column) pairs with cosine >= ``threshold``, sorted by positive column."""
    from qadapter.core.vectors import normalize

    src: list[np.ndarray] = []
    dst: list[np.ndarray] = []
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
    Q: np.ndarray,
    D: np.ndarray,
    columns: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray],
    n_hard: int,
    search: tuple[str, float, str | None],
) -> np.ndarray:
    """Per query row (rows without pairs get zeros, never read): its ``n_hard`` best-ranked training documents that
    are neither its positives nor near-duplicates of them (random columns when too few are left). Only the queries
    of the pairs are searched, over the whole corpus (one index shared with validation and evaluation; documents
    without training queries are skipped)."""
    pair_q, pos_cols = pairs
    ann, threshold, device = search
    n_queries = int(pair_q.max()) + 1
    mined = np.unique(pair_q)
    at = np.searchsorted(mined, pair_q)
    share = len(columns) / max(len(D), 1)
    k = min(int(np.ceil((n_hard + 8) / share)), len(D))
    rows, _ = nearest(Q[mined], D, k=k, ann=ann, above=MINE_ANN_ABOVE, nprobe=MINE_NPROBE, device=device)
    col_of = np.full(len(D) + 1, -1, dtype=np.int64)  # row -1 (an index's padding) maps to -1 as well
    col_of[columns] = np.arange(len(columns))
    idx = col_of[rows]
    bad = idx < 0
    np.logical_or.at(
        bad, at, (idx[at] == pos_cols[:, None]) | _similar(D, columns, idx[at], pos_cols, threshold)
    )
    order = np.argsort(bad, axis=1, kind="stable")[:, :n_hard]
    picks = np.take_along_axis(idx, order, axis=1)
    short = np.take_along_axis(bad, order, axis=1)
    if picks.shape[1] < n_hard:
        pad = n_hard - picks.shape[1]
        picks = np.concatenate([picks, np.zeros((len(mined), pad), dtype=np.int64)], axis=1)
        short = np.concatenate([short, np.ones((len(mined), pad), dtype=bool)], axis=1)
    rng = np.random.default_rng(0)
    picks[short] = rng.integers(len(columns), size=int(short.sum()))
    hard = np.zeros((n_queries, n_hard), dtype=np.int64)
    hard[mined] = picks
    return hard


def _similar(
    D: np.ndarray, columns: np.ndarray, idx: np.ndarray, pos_cols: np.ndarray, threshold: float
) -> np.ndarray:
    """(pairs, k) True where the candidate column ``idx`` has base-model cosine >= ``threshold`` with the pair's
    positive (computed in blocks of pairs: a block gathers block x k document vectors)."""
    from qadapter.core.vectors import normalize

    out = np.zeros(idx.shape, dtype=bool)
    step = max(1, 65_536 // max(1, idx.shape[1]))
    for start in range(0, len(idx), step):
        cols = np.maximum(idx[start : start + step], 0)
        pos = normalize(D[columns[pos_cols[start : start + step]]])
        docs = normalize(D[columns[cols.ravel()]]).reshape(*cols.shape, -1)
        out[start : start + step] = np.einsum("pkd,pd->pk", docs, pos) >= threshold
    return out


def excluded_pairs(plan: NegativePlan, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row in batch, excluded column) for every false negative of the pairs in ``batch``."""
    starts, ends = plan.excluded_ptr[batch], plan.excluded_ptr[batch + 1]
    lengths = ends - starts
    if not lengths.sum():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    rows, positions = _expand(starts, lengths)
    return rows, plan.excluded_cols[positions]
