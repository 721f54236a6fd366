"""Cross-fitted selection for small training sets: every training query judges, once, by a fit that never saw it.

A held-out validation split judges each candidate on a quarter of the training queries; with 120 queries that is a
few dozen, too few to show a real gain with confidence. Here the training queries are cut into ``folds`` groups:

- each connected group of queries and documents (:func:`qadapter.train.judging._components`) either goes whole
  into one fold, so its queries are judged by a fit that never saw their documents (``new-documents``), or, when it
  has at least two queries, is dealt over several folds, so each of its queries is judged by a fit that saw other
  queries of its documents (``seen-documents``). Single-query groups are always new; groups of several are new with
  the probability that brings the new share of judged queries to :data:`NEW_SHARE` (as the held-out split does).
- each candidate is fitted on every fold's remaining queries (its whole schedule, monitoring nothing: no epoch is
  picked, so nothing flatters the judge) and scores that fold's queries; the out-of-fold scores of all queries fill
  the same table rows as the held-out split, so the rules (``min_z``, no harm on new documents, objectives) are
  unchanged. The winner is refitted on all queries.
- the confidence a winner needs comes from a finer score than the metric: each query's log-rank of its relevant
  document among all documents (:func:`qadapter.train.validation.log_ranks`), whose paired gain must reach the
  family-wise bar of :func:`family_z` (``z_evidence`` in the table), on the new-documents part
  (:func:`confidence_parts` says why), with the false-ship rate split between favoured rows and the others
  (:func:`family_bars`); the metric itself must gain and must show no harm on new documents, and among the rows
  that qualify the largest metric gain wins.
- every judged query is about documents its fit never saw, so a map's gain on the documents that *have* training
  queries (where most of a small set's gain is: a plain fit's, on AppleQA) is never measured. When the labels
  agree with the base model (:func:`label_agreement`: they mean something), the favoured rows' bar is that of one
  test at ``rules.agreeing_min_z`` instead (:func:`family_bars`); random labels keep the strict bars. The numbers behind both are at
  ``SelectionRules.agreeing_min_z``.
- every fit runs ``rules.crossfit_epochs`` epochs (:func:`small_schedule`), the shipped refit too.
- linear maps are also judged shrunk toward the identity, ``I + a (W - I)`` (bias ``a b``), for each ``a`` of
  ``rules.shrinkage`` (or of the candidate's own ``shrinkage``): rows named ``linear@0.5``; the folds' fits are
  reused, so shrinkage costs no training, and a shrunk winner's refit is shrunk by the same ``a``. A small
  training set pulls a map further than its evidence supports; shrinking it keeps the direction and trims the
  reach.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from qadapter.adapters import Adapter
from qadapter.train import judging
from qadapter.train.candidates import Augmentation, Candidate, _fit_candidate, _fit_candidates, training_set
from qadapter.train.judging import MIN_PART, SelectionResult, SelectionRules, _components, table_row
from qadapter.train.objectives import NEW, SEEN, part_weights
from qadapter.train.validation import log_ranks, per_query

logger = logging.getLogger(__name__)

#: target share of judged queries that are about documents the judging fit never saw (the held-out split's 15% new
#: against 10% seen)
NEW_SHARE = 0.6
#: below this many training queries no adapter is judged at all (a z-test on fewer paired differences of a lumpy
#: metric such as MRR@10 is not to be trusted)
MIN_QUERIES = 50
#: random sign patterns behind the z a winner needs (:func:`family_z`)
SIGN_FLIPS = 2000


@dataclass
class Folds:
    """Which fold judges each training query (by row) and which part (new or seen documents) it judges for."""

    fold: np.ndarray
    part: list[str]

    @property
    def k(self) -> int:
        return int(self.fold.max()) + 1 if len(self.fold) else 0

    def rows(self, part: str) -> np.ndarray:
        return np.array([q for q, p in enumerate(self.part) if p == part], dtype=np.int64)


def make_folds(
    rels: Sequence[dict[int, int]], k: int = 4, seed: int = 0, new_share: float = NEW_SHARE
) -> Folds:
    """Assign every query to one of ``k`` folds (see the module docstring): whole groups for new-document judges,
    dealt groups for seen-document judges. A query of a dealt group counts as seen only when each of its documents
    has a query in another fold; otherwise it is judged as new."""
    rng = np.random.default_rng(seed)
    groups = _components(rels)
    n = len(rels)
    singles = sum(len(g) for g in groups if len(g) == 1)
    multi = n - singles
    p_new = 0.0 if multi == 0 else min(1.0, max(0.0, (new_share * n - singles) / multi))
    fold = np.full(n, -1, dtype=np.int64)
    sizes = np.zeros(k, dtype=np.int64)
    dealt: list[list[int]] = []
    for g in (groups[i] for i in rng.permutation(len(groups))):
        if len(g) == 1 or rng.random() < p_new:
            target = int(np.flatnonzero(sizes == sizes.min())[rng.integers((sizes == sizes.min()).sum())])
            fold[g] = target
            sizes[target] += len(g)
        else:
            dealt.append(g)
    for g in dealt:
        order = rng.permutation(g)
        start = int(np.argmin(sizes))
        for i, q in enumerate(order):
            f = (start + i) % k
            fold[q] = f
            sizes[f] += 1
    return Folds(fold, _parts(rels, fold))


def _parts(rels: Sequence[dict[int, int]], fold: np.ndarray) -> list[str]:
    """``seen`` for a query each of whose documents has a query in another fold, else ``new``."""
    folds_of: dict[int, set[int]] = {}
    for q, docs in enumerate(rels):
        for d in docs:
            folds_of.setdefault(d, set()).add(int(fold[q]))
    parts = []
    for q, docs in enumerate(rels):
        seen = bool(docs) and all(folds_of[d] - {int(fold[q])} for d in docs)
        parts.append(SEEN if seen else NEW)
    return parts


def shrink(adapter: Adapter, alpha: float) -> Adapter:
    """The linear map ``I + alpha (W - I)`` with bias ``alpha b``: ``alpha`` = 0 is the identity, 1 the map itself."""
    eye = np.eye(adapter.dim, dtype=np.float32)
    weight = eye + np.float32(alpha) * (adapter.tensors["weight"] - eye)
    bias = np.float32(alpha) * adapter.tensors["bias"]
    return Adapter("linear", adapter.dim, {"weight": weight, "bias": bias}, dict(adapter.config))


def shrunk_name(name: str, alpha: float) -> str:
    return f"{name}@{alpha:g}"


def split_name(name: str) -> tuple[str, float]:
    """The candidate behind a table row's name and its shrinkage: ``linear@0.5`` -> (``linear``, 0.5)."""
    base, _, alpha = name.rpartition("@")
    if base:
        try:
            return base, float(alpha)
        except ValueError:
            pass
    return name, 1.0


@dataclass
class _OutOfFold:
    """Per-query out-of-fold scores of one table row, filled fold by fold."""

    name: str
    params: dict[str, Any]
    scores: np.ndarray
    evidence: np.ndarray
    seconds: float = 0.0
    epochs: int = 0


def select_crossfit(
    Q: np.ndarray,
    D: np.ndarray,
    rels: Sequence[dict[int, int]],
    candidates: Sequence[Candidate],
    rules: SelectionRules,
    negative_pool: np.ndarray | None,
    augmentation: Augmentation | None,
    progress: bool,
) -> SelectionResult:
    """:func:`qadapter.train.selection.select` for training sets below ``rules.crossfit_below`` queries."""
    start = time.perf_counter()
    dim = D.shape[1]
    folds = make_folds(rels, rules.folds, rules.seed)
    parts = {p: folds.rows(p) for p in (NEW, SEEN)}
    parts = {p: rows for p, rows in parts.items() if len(rows) >= MIN_PART}
    record = _record(folds, parts)
    if len(rels) < MIN_QUERIES or not parts:
        reason = (
            f"only {len(rels)} training queries: too few to judge an adapter (cross-fitting needs at least "
            f"{MIN_QUERIES}), so no adapter can be shown to help; kept the base model (identity). Add labelled or "
            "generated queries and train again."
        )
        return SelectionResult(
            Adapter.identity(dim), "identity", reason, [], None, record, time.perf_counter() - start
        )
    candidates = small_schedule(small_space(candidates), rules)
    if rules.crossfit_epochs is not None:
        record["epochs"] = rules.crossfit_epochs
    base = per_query(Q, D, rels, [rules.metric])[rules.metric]
    weights = part_weights(rules.objective, rules.coverage, list(parts))
    judges, judge_weights = confidence_parts(parts, weights, rules.objective)
    favoured = {c.name for c in candidates if c.favoured}
    base_evidence, agreement = label_agreement(Q, D, rels, rules.seed)
    agreeing = agreement >= rules.agreement_z
    record["label_agreement_z"] = round(agreement, 1)
    table, evidence_diffs = [], {}
    for oof in _cross_fit(candidates, Q, D, rels, folds, rules, negative_pool, augmentation):
        scores = {p: oof.scores[rows] for p, rows in parts.items()}
        row = table_row(oof.name, oof.params, scores, {p: base[r] for p, r in parts.items()}, weights)
        if oof.name != "identity":
            evidence_diffs[oof.name] = oof.evidence - base_evidence
            row["z_evidence"] = weighted_z(oof.evidence - base_evidence, judges, judge_weights)
        row["epochs"], row["seconds"] = oof.epochs, round(oof.seconds, 2)
        table.append(row)
        logger.info(
            "candidate %s: gain %+.4f (z=%.2f, log-rank z=%.2f) %s",
            oof.name,
            row["mean_gain"],
            row["z"],
            row.get("z_evidence", 0.0),
            row["gain"],
        )
    bars = family_bars(evidence_diffs, favoured, (judges, judge_weights), rules, agreeing)
    for row in table:
        if row["name"] != "identity":
            row["z_needed"] = bars[split_name(row["name"])[0] in favoured]
    record["min_z"] = round(min(bars.values(), default=rules.min_z), 2)
    if len(bars) == 2:
        record["min_z_others"] = round(bars[False], 2)
    winner = judging._winner(table, rules)
    how = _how(folds, parts, bars, agreement if agreeing and rules.agreeing_min_z is not None else None)
    if winner is None:
        reason = judging._no_winner_reason(table, rules.metric, how)
        return SelectionResult(
            Adapter.identity(dim), "identity", reason, table, None, record, time.perf_counter() - start
        )
    name, alpha = split_name(winner["name"])
    cand = next(c for c in candidates if c.name == name)
    Q_all, all_pairs = training_set(Q, range(len(rels)), rels, augmentation)
    adapter, _, _ = _fit_candidate(cand, Q_all, D, all_pairs, None, negative_pool, progress)
    if alpha != 1.0:
        adapter = shrink(adapter, alpha)
    reason = judging._winner_reason(winner, rules) + how
    return SelectionResult(adapter, winner["name"], reason, table, None, record, time.perf_counter() - start)


def small_space(candidates: Sequence[Candidate]) -> list[Candidate]:
    """The candidates marked ``small`` (and the identity), unless that leaves nothing to try (e.g. ``--kind mlp``)."""
    kept = [c for c in candidates if c.small or c.method == "identity"]
    return kept if any(c.method != "identity" for c in kept) else list(candidates)


def small_schedule(candidates: Sequence[Candidate], rules: SelectionRules) -> list[Candidate]:
    """The candidates as cross-fitting fits them: trained ones for ``rules.crossfit_epochs`` epochs (unchanged when
    that is ``None``): a small training set is fitted five times (four folds and the refit), and fewer epochs move
    a map less far, as shrinking does; ridge with ``rules.crossfit_ridge_lam`` (``"loo"``: chosen per fit by
    leave-one-out, :func:`qadapter.train.closed_form.loo_lam`)."""
    out = []
    for c in candidates:
        if c.config is not None and rules.crossfit_epochs is not None:
            c = dataclasses.replace(c, config=c.config.replace(epochs=rules.crossfit_epochs))
        elif c.method == "ridge" and rules.crossfit_ridge_lam is not None:
            c = dataclasses.replace(c, params={**c.params, "lam": rules.crossfit_ridge_lam})
        out.append(c)
    return out


def _cross_fit(
    candidates: Sequence[Candidate],
    Q: np.ndarray,
    D: np.ndarray,
    rels: Sequence[dict[int, int]],
    folds: Folds,
    rules: SelectionRules,
    pool: np.ndarray | None,
    augmentation: Augmentation | None,
) -> list[_OutOfFold]:
    """Fit every candidate without each fold (trained candidates together where they can share batches) and score
    that fold's queries: per candidate one row for its map and one per shrinkage of a linear map. All rows of a
    fold are scored in one pass over the documents (one search, one rank count), not one pass per row."""
    rows = {c.name: _rows(c, rules, len(rels)) for c in candidates}
    for f in range(folds.k):
        held = np.flatnonzero(folds.fold == f)
        Q_fit, pairs = training_set(Q, np.flatnonzero(folds.fold != f).tolist(), rels, augmentation)
        fitted = _fit_candidates(candidates, Q_fit, D, pairs, None, pool, False)
        scored: list[tuple[_OutOfFold, np.ndarray]] = []
        for cand in candidates:
            adapter, _, epochs, seconds = fitted[cand.name]
            maps = [adapter] + [shrink(adapter, row.params["shrink"]) for row in rows[cand.name][1:]]
            for row, mapped in zip(rows[cand.name], maps, strict=True):
                scored.append((row, mapped.transform(Q[held])))
                row.epochs = epochs
            rows[cand.name][0].seconds += seconds
        held_rels = [rels[q] for q in held.tolist()] * len(scored)
        moved = np.concatenate([m for _, m in scored])
        values = per_query(moved, D, held_rels, [rules.metric])[rules.metric].reshape(len(scored), len(held))
        evidence = log_ranks(moved, D, held_rels).reshape(len(scored), len(held))
        for (row, _), v, e in zip(scored, values, evidence, strict=True):
            row.scores[held], row.evidence[held] = v, e
    return [row for c in candidates for row in rows[c.name]]


def _rows(cand: Candidate, rules: SelectionRules, n: int) -> list[_OutOfFold]:
    """The table rows of ``cand``: its map, then (linear maps) each shrinkage of ``cand.shrinkage`` (by default
    ``rules.shrinkage``)."""
    factors = rules.shrinkage if cand.shrinkage is None else cand.shrinkage
    alphas = [a for a in factors if 0 < a < 1] if cand.kind == "linear" else []
    rows = [_OutOfFold(cand.name, cand.describe(), np.zeros(n), np.zeros(n))]
    return rows + [
        _OutOfFold(shrunk_name(cand.name, a), {**cand.describe(), "shrink": a}, np.zeros(n), np.zeros(n))
        for a in alphas
    ]


def confidence_parts(
    parts: dict[str, np.ndarray], weights: dict[str, float], objective: str
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """The parts whose log-rank gains give a winner its confidence: under the ``balanced`` objective the
    new-documents part alone when it is judged, else all parts with the objective's weights (``covered`` and
    ``seen`` say that documents with training queries are what matters).

    A map fitted on any labels moves queries toward the documents it was trained on, which are exactly the
    seen-documents part's documents, so that part's ranks improve even where nothing can be learned (seeds 2 and
    35 of ``pure_noise`` in tests/test_crossfit.py: seen-part log-rank z of 1.8-3.0 for every linear row, new part
    -0.2 to +1.4; judging both parts shipped a map on both).
    On new documents that pull works against a map, so a gain there is evidence. The metric's own table (both
    parts, weighted) still decides the winner and the no-harm rule."""
    if objective == "balanced" and NEW in parts:
        return {NEW: parts[NEW]}, {NEW: 1.0}
    return parts, weights


def weighted_z(diff: np.ndarray, parts: dict[str, np.ndarray], weights: dict[str, float]) -> float:
    """The z of the parts' weighted mean of per-query gains ``diff`` (weighed as
    :func:`~qadapter.train.judging.table_row` weighs the metric)."""
    gain, se = judging.weighted_gain({p: diff[rows] for p, rows in parts.items()}, weights)
    return gain / se if se > 0 else 0.0


def label_agreement(
    Q: np.ndarray, D: np.ndarray, rels: Sequence[dict[int, int]], seed: int
) -> tuple[np.ndarray, float]:
    """The base model's log-ranks of the labels (:func:`qadapter.train.validation.log_ranks`) and how far it agrees
    with them: the z of their paired gain over the same queries' log-ranks of the labels shuffled among them. Both
    come from one pass over the documents. Labels that mean something sit far above shuffled ones (z about 15-20 on
    120 AppleQA questions); random labels give a z drawn from N(0, 1)."""
    order = np.random.default_rng(seed).permutation(len(rels))
    ranks = log_ranks(np.concatenate([Q, Q]), D, [*rels, *(rels[int(i)] for i in order)])
    evidence, diff = ranks[: len(rels)], ranks[: len(rels)] - ranks[len(rels) :]
    sd = float(diff.std(ddof=1))
    return evidence, (float(diff.mean() / (sd / np.sqrt(len(diff)))) if sd > 0 else 0.0)


def family_bars(
    diffs: dict[str, np.ndarray],
    favoured: set[str],
    judges: tuple[dict[str, np.ndarray], dict[str, float]],
    rules: SelectionRules,
    agreeing: bool = False,
) -> dict[bool, float]:
    """The log-rank z each row needs, by whether its candidate is favoured: the false-ship rate of one test at
    ``rules.min_z`` is split between the favoured rows (a share of ``rules.favoured_share``) and the others, and
    each group gets its own max-T bar (:func:`family_z`). The chance that any row of a pure-noise search ships stays
    that of one test at ``min_z``: the two groups' chances add up to it. With one group only, it gets all.

    When the labels agree with the base model (``agreeing``, :func:`label_agreement`) and
    ``rules.agreeing_min_z`` is set, the favoured rows' bar is instead the max-T bar of one test at that z: the
    judged gain is on new documents only, and those rows also gain where the training queries' documents are
    (``SelectionRules.agreeing_min_z`` says why and what it was measured on)."""
    groups = {
        True: [d for name, d in diffs.items() if split_name(name)[0] in favoured],
        False: [d for name, d in diffs.items() if split_name(name)[0] not in favoured],
    }
    groups = {k: v for k, v in groups.items() if v}
    tail = NormalDist().cdf(-rules.min_z)
    bars = {}
    for is_favoured, group in groups.items():
        share = (
            1.0 if len(groups) == 1 else (rules.favoured_share if is_favoured else 1.0 - rules.favoured_share)
        )
        floor = -NormalDist().inv_cdf(tail * share)
        if is_favoured and agreeing and rules.agreeing_min_z is not None:
            floor = rules.agreeing_min_z
        bars[is_favoured] = family_z(group, judges[0], judges[1], floor, rules.seed)
    return bars


def family_z(
    diffs: Sequence[np.ndarray],
    parts: dict[str, np.ndarray],
    weights: dict[str, float],
    min_z: float,
    seed: int,
    draws: int = SIGN_FLIPS,
) -> float:
    """The z a winner needs so that, when no candidate changes the expected score, the *best* of them reaches it as
    rarely as one candidate reaches ``min_z`` (Westfall and Young's max-T: the per-query gains of all candidates get
    the same random signs, ``draws`` times). Never below ``min_z``.

    Cross-fitting judges more rows (shrunk maps) with every query; without this, the chance that some row of a
    pure-noise search clears ``min_z`` grew with the rows (2 of 12 pure-noise seeds shipped a map at 300 queries).
    The sign flips also keep the test honest when most gains are exactly zero (a metric at chance level), where
    the normal approximation behind one z is poor."""
    if not diffs:
        return min_z
    alpha = NormalDist().cdf(-min_z)  # one-sided tail of min_z
    signs = np.random.default_rng(seed).choice(np.array([-1.0, 1.0]), size=(draws, len(diffs[0])))
    matrix = np.stack(diffs)  # (rows, queries)
    total = sum(weights.get(p, 0.0) for p in parts)
    gain = np.zeros((draws, len(matrix)))
    var = np.zeros((draws, len(matrix)))
    for p, rows in parts.items():
        w, n = weights.get(p, 0.0) / total, len(rows)
        d = matrix[:, rows]
        means = signs[:, rows] @ d.T / n  # (draws, rows)
        part_var = np.maximum((d**2).sum(1)[None, :] - n * means**2, 0.0) / (n - 1) / n
        gain += w * means
        var += w**2 * part_var
    se = np.sqrt(var)
    z = np.divide(gain, se, out=np.zeros_like(gain), where=se > 0)
    return max(min_z, float(np.quantile(z.max(1), 1.0 - alpha)))


def _record(folds: Folds, parts: dict[str, np.ndarray]) -> dict[str, Any]:
    return {
        "scheme": "crossfit",
        "folds": folds.k,
        "judged_new": int(len(parts.get(NEW, ()))),
        "judged_seen": int(len(parts.get(SEEN, ()))),
    }


def _how(
    folds: Folds, parts: dict[str, np.ndarray], bars: dict[bool, float], agreement: float | None = None
) -> str:
    counts = " and ".join(f"{len(rows)} {p}" for p, rows in parts.items())
    if len(bars) == 2:
        needed = f"log-rank z needed {bars[True]:.2f} for the favoured candidates, {bars[False]:.2f} for the others"
    else:
        needed = f"log-rank z needed {next(iter(bars.values()), 0.0):.2f} for the best of all candidates"
    if agreement is not None and True in bars:
        needed += (
            f"; the labels agree with the base model (z={agreement:.0f} over shuffled labels), so the favoured "
            "candidates' bar is that of one test at the lower agreeing_min_z"
        )
    return (
        f" (judged by {folds.k}-fold cross-fitting: every training query scored once by a fit that did not see "
        f"it; {counts} queries; {needed})"
    )
