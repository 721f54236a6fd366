"""report.md and its charts: files written, PNGs valid, and the headline says the right thing in each case."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from qadapter.errors import QadapterError
from qadapter.evaluate import diagnostics as diag
from qadapter.evaluate.stats import compare
from qadapter.report import (
    charts,
    format_table,
    headline,
    learning_curve_reading,
    render_markdown,
    write_report,
)

METRICS = ("hit@10", "mrr@10", "ndcg@10")
DIAGNOSTIC_CHARTS = ["metric_curves.png", "rank_changes.png", "score_distribution.png"]


def _results(
    shift: float, *, n: int = 400, with_comparison: bool = True, seed: int = 0, n_relevant: int = 1
) -> dict:
    """Results built from real per-query arrays and the real compare(); adapted = base + shift + noise.

    The curves, rank changes and score distributions come from the real diagnostics on synthetic runs in which the
    adapter moves each query's relevant documents ``shift * 20`` ranks up (give or take noise).
    """
    rng = np.random.default_rng(seed)
    base = {m: rng.random(n) * 0.6 for m in METRICS}
    adapted = {m: np.clip(v + shift + rng.normal(0, 0.15, n), 0, 1) for m, v in base.items()}
    results = {
        "split": "test",
        "n_queries": n,
        "model": "all-MiniLM-L6-v2",
        "store": "exact",
        "baseline": {m: float(v.mean()) for m, v in base.items()},
        "adapted": {m: float(v.mean()) for m, v in adapted.items()},
        **_diagnostics(rng, n, shift, n_relevant),
    }
    if with_comparison:
        results["comparison"] = compare(base, adapted, n_boot=300, n_perm=1000, wilcoxon=False)
    return results


def _diagnostics(rng: np.random.Generator, n: int, shift: float, n_relevant: int, depth: int = 100) -> dict:
    qrels = {f"q{i}": {f"rel{j}": 1 for j in range(n_relevant)} for i in range(n)}
    base_ranks = rng.integers(1, 60, size=(n, n_relevant))
    adapted_ranks = np.clip(base_ranks - int(20 * shift) + rng.integers(-8, 9, size=(n, n_relevant)), 1, None)
    runs = {name: {} for name in ("baseline", "adapted")}
    for name, ranks in (("baseline", base_ranks), ("adapted", adapted_ranks)):
        for i, qid in enumerate(qrels):
            run = {f"other{r}": 1.0 - r / 1000 for r in range(1, depth + 1)}
            for j, r in enumerate(ranks[i]):  # a relevant document takes the place of the r-th other one
                run.pop(f"other{r}", None)
                run[f"rel{j}"] = 1.0 - r / 1000 + 1e-6 * (j + 1)
            runs[name][qid] = run
    first = {name: diag.first_relevant_ranks(qrels, run, depth) for name, run in runs.items()}
    scores = {"baseline": rng.normal(0.5, 0.1, 3 * n), "adapted": rng.normal(0.25, 0.07, 3 * n)}
    return {
        "curves": {name: diag.metric_curves(qrels, run, depth) for name, run in runs.items()},
        "rank_changes": diag.rank_changes(first["baseline"], first["adapted"], depth),
        "score_distribution": {
            "bins": list(diag.SCORE_BINS),
            "k": 10,
            **{
                name: {"relevant": diag.distribution(v[:n]), "non_relevant": diag.distribution(v[n:] - 0.05)}
                for name, v in scores.items()
            },
        },
    }


HISTORY = {
    "epochs": [1, 2, 3, 4],
    "train_loss": [1.2, 0.8, 0.6, 0.55],
    "val": [0.30, 0.36, 0.39, 0.38],
    "val_metric": "mrr@10",
}
CURVE = [
    {"n_pairs": 800, "baseline": 0.28, "adapted": 0.41, "metric": "mrr@10"},  # deliberately unsorted
    {"n_pairs": 100, "baseline": 0.28, "adapted": 0.31, "metric": "mrr@10"},
    {"n_pairs": 400, "baseline": 0.28, "adapted": 0.37, "metric": "mrr@10"},
]
SELECTION = {
    "candidates": [
        {"name": "identity", "params": {"kind": "identity"}, "val": {"mrr@10": 0.30}, "chosen": False},
        {
            "name": "linear",
            "params": {"kind": "linear", "lr": 0.001},
            "val": {"mrr@10": 0.39},
            "chosen": True,
        },
        {
            "name": "lowrank|r=16",
            "params": {"kind": "lowrank", "rank": 16},
            "val": {"mrr@10": 0.37},
            "chosen": False,
        },
    ],
    "chosen": "linear",
    "reason": "Highest validation mrr@10.",
}
IDENTITY_SELECTION = {
    "candidates": [
        {"name": "identity", "params": {"kind": "identity"}, "val": {"mrr@10": 0.30}, "chosen": True},
        {"name": "linear", "params": {"kind": "linear"}, "val": {"mrr@10": 0.29}, "chosen": False},
    ],
    "chosen": "identity",
    "reason": "No adapter beat the base model on validation.",
}


def _assert_png(path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 300 and image.height > 200
        # not a blank canvas: a chart has many distinct colours
        assert len(image.convert("RGB").getcolors(maxcolors=1_000_000) or []) > 10


def test_full_report_for_an_improved_adapter(tmp_path):
    results = _results(0.15)
    paths = write_report(
        tmp_path / "adapter", results, history=HISTORY, learning_curve=CURVE, selection=SELECTION
    )
    names = [p.name for p in paths]
    assert names == ["report.md", *DIAGNOSTIC_CHARTS, "training.png", "learning_curve.png"]
    for path in paths[1:]:
        _assert_png(path)
    text = paths[0].read_text()
    comp = results["comparison"]["mrr@10"]
    base, adapted = results["baseline"]["mrr@10"], results["adapted"]["mrr@10"]
    assert (
        f"The adapter improves mrr@10 from {base:.3f} to {adapted:.3f} (+{adapted - base:.3f}, 95% CI "
        f"[{comp['delta_ci'][0]:+.3f}, {comp['delta_ci'][1]:+.3f}], p<0.001) on 400 test queries; "
        f"{comp['better']} queries better, {comp['worse']} worse." in text
    )
    for image in (*DIAGNOSTIC_CHARTS, "training.png", "learning_curve.png"):
        assert f"]({image})" in text
    assert "| metric | base | adapted | delta | 95% CI of delta | p | better / worse / tied |" in text
    assert "| linear | kind=linear, lr=0.001 | 0.390 | yes |" in text
    assert "lowrank\\|r=16" in text  # pipes in names cannot break the table
    assert "Highest validation mrr@10." in text
    # no best_epoch recorded: the last epoch's weights were kept
    assert (
        "Validation mrr@10 0.380 at epoch 4 of 4 (the weights kept); its highest, 0.390, was at epoch 3."
        in text
    )
    early = write_report(tmp_path / "early", results, history={**HISTORY, "best_epoch": 3})[0].read_text()
    assert "Validation mrr@10 0.390 at epoch 3 of 4 (the weights kept)." in early
    assert "more labelled queries would likely help" in text  # +0.04 from 400 to 800 pairs
    assert not list(tmp_path.glob("adapter/.*.tmp"))  # atomic writes leave no temp files


def test_identity_report_says_the_base_model_was_kept(tmp_path):
    results = _results(0.0)
    paths = write_report(tmp_path, results, selection=IDENTITY_SELECTION)
    assert [p.name for p in paths] == [
        "report.md",
        *DIAGNOSTIC_CHARTS,
    ]  # no history, no curve -> no such charts
    text = paths[0].read_text()
    first = text.splitlines()[2]
    assert first.startswith(
        "No adapter beat the base model on validation; qadapter kept the base model (identity)."
    )
    assert "The adapter improves" not in text
    assert "## Training" not in text and "## Learning curve" not in text
    assert not (tmp_path / "training.png").exists()


def test_headline_when_the_difference_is_not_significant():
    # The adapter reshuffles which queries do well (reversed pairing) without changing the mean at all.
    base = {"mrr@10": np.linspace(0.1, 0.9, 60)}
    adapted = {"mrr@10": base["mrr@10"][::-1].copy()}
    results = {**_results(0.0), "n_queries": 60, "comparison": compare(base, adapted, wilcoxon=False)}
    results["baseline"] = {"mrr@10": float(base["mrr@10"].mean())}
    results["adapted"] = {"mrr@10": float(adapted["mrr@10"].mean())}
    comp = results["comparison"]["mrr@10"]
    assert not comp["significant"] and comp["better"] == comp["worse"] == 30
    text = headline(results)
    assert text.startswith("The adapter changes mrr@10 from")
    assert f"{comp['better']} queries better, {comp['worse']} worse." in text
    assert "not statistically significant at the 5% level" in text


def test_headline_when_the_adapter_hurts():
    text = headline(_results(-0.1))
    assert text.startswith("The adapter lowers mrr@10 from") and "keep the base model" in text


def test_report_without_comparison_has_a_plain_table(tmp_path):
    results = _results(0.1, with_comparison=False)
    paths = write_report(tmp_path, results)
    _assert_png(paths[1])
    text = paths[0].read_text()
    assert "no significance test was run" in text
    assert "| metric | base | adapted | delta |\n" in text and "CI" not in text


def test_primary_metric_follows_results_then_history():
    results = _results(0.15)
    assert "ndcg@10 from" in headline({**results, "primary_metric": "ndcg@10"})
    assert "hit@10 from" in render_markdown(results, history={**HISTORY, "val_metric": "hit@10"})


@pytest.mark.parametrize(
    ("last", "expected"),
    [(0.41, "still rising"), (0.372, "flat"), (0.35, "flat")],
)
def test_learning_curve_reading(last, expected):
    curve = [*CURVE[1:], {**CURVE[0], "adapted": last}]
    assert expected in learning_curve_reading(curve)
    assert "400 to 800 training pairs" in learning_curve_reading(curve)


def test_learning_curve_reading_with_one_point():
    assert "no trend" in learning_curve_reading(CURVE[:1])


def test_format_table_for_the_terminal():
    results = _results(0.15)
    lines = format_table(results).splitlines()
    assert lines[0].split() == ["metric", "base", "adapted", "delta", "p"]
    assert len(lines) == 1 + len(METRICS)
    row = dict(zip(lines[0].split(), lines[2].split(), strict=True))
    assert row["metric"] == "mrr@10" and row["p"] == "<0.001"
    assert row["delta"] == f"{results['adapted']['mrr@10'] - results['baseline']['mrr@10']:+.3f}"
    assert len({len(line) for line in lines}) == 1  # aligned columns
    assert format_table(_results(0.1, with_comparison=False)).splitlines()[0].split()[-1] == "delta"


def test_rewriting_a_report_replaces_it(tmp_path):
    write_report(tmp_path, _results(0.15), selection=SELECTION)
    write_report(tmp_path, _results(0.0), selection=IDENTITY_SELECTION)
    assert "kept the base model (identity)" in (tmp_path / "report.md").read_text()


def test_missing_result_keys_are_a_user_error(tmp_path):
    results = _results(0.1)
    del results["store"]
    with pytest.raises(QadapterError, match="store"):
        write_report(tmp_path, results)
    assert not (tmp_path / "report.md").exists()


def test_importing_the_report_package_does_not_load_matplotlib():
    code = "import sys, qadapter.report; print('matplotlib' in sys.modules, 'scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_every_image_linked_from_the_report_exists_and_every_chart_is_linked(tmp_path):
    results = {**_results(0.15), "score_scale": {"threshold": 0.5, "mapped_threshold": 0.21, "k": 10,
                                                 "base_share": 0.58, "adapted_share": 0.55,
                                                 "adapted_share_unmapped": 0.0}}  # fmt: skip
    paths = write_report(tmp_path, results, history=HISTORY, learning_curve=CURVE, selection=SELECTION)
    text = paths[0].read_text()
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(linked) == 5
    for name in linked:
        _assert_png(tmp_path / name)
    assert sorted(linked) == sorted(p.name for p in tmp_path.glob("*.png"))
    assert "maps a base cut-off of 0.5 to 0.210: of the top-10 results here it keeps 55.0%" in text


def _colour_pixels(path, hex_colour: str, tolerance: int = 12) -> int:
    target = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=int)
    return int((np.abs(pixels - target).max(axis=-1) <= tolerance).sum())


def test_each_chart_shows_distinct_series(tmp_path):
    paths = {p.name: p for p in write_report(tmp_path, _results(0.15), history=HISTORY, learning_curve=CURVE)}
    expected = {
        "metric_curves.png": (charts.BASE_COLOR, charts.ADAPTED_COLOR),
        "rank_changes.png": (charts.UP_COLOR, charts.DOWN_COLOR, charts.BASE_COLOR),
        "score_distribution.png": (charts.ADAPTED_COLOR, charts.LOSS_COLOR),
        "training.png": (charts.LOSS_COLOR, charts.ADAPTED_COLOR),
        "learning_curve.png": (charts.BASE_COLOR, charts.ADAPTED_COLOR),
    }
    for name, colours in expected.items():
        for colour in colours:  # every series is drawn in its own colour, visibly (not just a legend swatch)
            assert _colour_pixels(paths[name], colour) > 150, (name, colour)


def test_hit_and_recall_curves_share_a_panel_only_when_they_are_equal(tmp_path):
    one = charts.metric_curves_chart(tmp_path / "one.png", _results(0.15, n_relevant=1))
    three = charts.metric_curves_chart(tmp_path / "three.png", _results(0.15, n_relevant=3))
    with Image.open(one) as a, Image.open(three) as b:
        assert (a.width, b.width) == (2 * 4 * charts.DPI, 3 * 4 * charts.DPI)  # 2 panels vs 3 panels


def test_training_chart_labels_whole_epochs_only():
    history = {"epochs": list(range(1, 16)), "train_loss": list(np.linspace(2, 1, 15)), "val": [0.3] * 15}
    for few in (HISTORY, history):
        fig = charts.training_figure(few)
        for ax in fig.axes:
            lo, hi = ax.get_xlim()
            ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
            assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks


def test_headline_and_report_say_when_test_queries_are_offline_pseudo_queries(tmp_path):
    caveat = (
        "25% of these test queries are offline pseudo-queries cut from the documents; "
        "they do not predict real questions."
    )
    results = {**_results(0.15), "offline_share": 0.25}
    assert headline(results).endswith(f"p<0.001) on 400 test queries; {_counts(results)} **{caveat}**")
    lines = write_report(tmp_path, results)[0].read_text().splitlines()
    assert lines[2].endswith(f"**{caveat}**")  # the same line as the number
    assert caveat not in headline(_results(0.15))


def _counts(results: dict) -> str:
    comp = results["comparison"]["mrr@10"]
    return f"{comp['better']} queries better, {comp['worse']} worse."
