"""``--precision float32|float16|bfloat16``: one registry, float32 vectors out, and caches kept apart (issue 12)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tiny_st_model import build_tiny_model

from qadapter.core.device import DEFAULT_PRECISION, PRECISIONS, check_precision
from qadapter.data import Document, Query, Workspace
from qadapter.embedding import CACHE_DIR
from qadapter.encoders import EmbeddingCache, embed, get_encoder, model_identity
from qadapter.encoders.sentence_transformers import SentenceTransformerEncoder
from qadapter.errors import QadapterError

REDUCED = [p for p in PRECISIONS if p != DEFAULT_PRECISION]
TINY_TEXTS = ["river city", "solar panel cost", "what does water do", "the price of energy", "how a city is"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("m") / "model", seed=5)


@pytest.fixture()
def tiny_ws(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    ws.write_corpus([Document("d1", "river city"), Document("d2", "solar panel cost")])
    ws.write_queries([Query("q1", "what river"), Query("q2", "solar energy price")])
    ws.write_qrels("test", {"q1": {"d1": 1}, "q2": {"d2": 1}})
    return ws


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# -- the registry and its errors --------------------------------------------------------------------------------------


def test_float32_is_the_default_and_names_are_normalised() -> None:
    assert DEFAULT_PRECISION == "float32" and DEFAULT_PRECISION in PRECISIONS
    assert check_precision(None) == "float32"
    assert check_precision(" BFloat16 ") == "bfloat16"
    assert SentenceTransformerEncoder().precision == "float32"


@pytest.mark.parametrize("bad", ["fp8", "half", "int8", ""])
def test_an_unknown_precision_is_an_error_naming_the_valid_ones(bad: str) -> None:
    with pytest.raises(QadapterError, match="unknown precision") as info:
        get_encoder(precision=bad)
    assert repr(bad) in str(info.value) and all(p in str(info.value) for p in PRECISIONS)


def test_an_openai_model_refuses_a_reduced_precision() -> None:
    with pytest.raises(QadapterError, match="applies to local Sentence Transformers models"):
        get_encoder("openai:text-embedding-3-small", base_url="http://127.0.0.1:9/v1", precision="bfloat16")
    get_encoder("openai:text-embedding-3-small", base_url="http://127.0.0.1:9/v1", precision="float32")


# -- the model computes in that dtype and still returns float32 -----------------------------------------------------


@pytest.mark.parametrize("precision", PRECISIONS)
def test_the_model_is_loaded_in_the_precision(tiny: Path, precision: str) -> None:
    import torch

    encoder = get_encoder(str(tiny), device="cpu", precision=precision)
    assert encoder.model.dtype == getattr(torch, precision)  # type: ignore[attr-defined]
    vectors = encoder.encode(TINY_TEXTS, kind="document")
    assert vectors.dtype == np.float32 and vectors.shape == (len(TINY_TEXTS), encoder.dim)
    assert np.isfinite(vectors).all()


def test_a_folder_saved_in_half_precision_still_computes_in_float32(tmp_path: Path, tiny: Path) -> None:
    """transformers loads a folder in its saved dtype by default; float32 must mean float32."""
    import torch
    from sentence_transformers import SentenceTransformer

    half = tmp_path / "half"
    SentenceTransformer(str(tiny), device="cpu").to(torch.float16).save(str(half))
    assert get_encoder(str(half), device="cpu").model.dtype == torch.float32  # type: ignore[attr-defined]


@pytest.mark.parametrize("precision", REDUCED)
def test_reduced_precision_vectors_match_float32_within_noise(precision: str) -> None:
    """The bundled model on real text (standard-library docstrings: summaries as queries, bodies as documents).

    Measured on this 2-core CPU (torch 2.13, sentence-transformers 6.3): minimum cosine 0.99994 for bfloat16 and
    0.999999 for float16 over these 40 queries and 20 documents (0.99993 and 0.999999 over 60 whole bodies, which
    take a minute at reduced precision on a CPU); the bound is the issue's 0.99.
    """
    from qadapter.demo.stdlib_docs import collect_entries

    entries = collect_entries()[:40]
    assert len(entries) == 40
    reference = get_encoder(device="cpu")
    reduced = get_encoder(device="cpu", precision=precision)
    queries, documents = [e.summary for e in entries], [e.body[:500] for e in entries[:20]]
    for kind, texts in (("query", queries), ("document", documents)):
        want = reference.encode(texts, kind=kind)  # type: ignore[arg-type]
        got = reduced.encode(texts, kind=kind)  # type: ignore[arg-type]
        assert got.dtype == np.float32 and got.shape == want.shape == (len(texts), 384)
        assert cosines(want, got).min() > 0.99


def test_the_precision_travels_with_a_shipped_encoder(tiny: Path) -> None:
    """Ray actors get the encoder serialised through its ``__getstate__`` (without its model) and load their own at
    the same precision; a deep copy goes through the same state."""
    encoder = get_encoder(str(tiny), device="cpu", precision="bfloat16")
    encoder.encode(["river"])
    shipped = copy.deepcopy(encoder)
    assert shipped.precision == "bfloat16" and shipped._model is None
    assert shipped.cache_identity() == encoder.cache_identity()  # type: ignore[attr-defined]


# -- cache identity ---------------------------------------------------------------------------------------------------


def test_float32_keeps_its_identity_and_other_precisions_get_their_own(tiny: Path) -> None:
    plain = get_encoder(str(tiny)).cache_identity()  # type: ignore[attr-defined]
    explicit = get_encoder(str(tiny), precision="float32").cache_identity()  # type: ignore[attr-defined]
    assert plain == explicit and plain.startswith("st:sha256:") and "@" not in plain
    reduced = {p: get_encoder(str(tiny), precision=p).cache_identity() for p in REDUCED}  # type: ignore[attr-defined]
    assert reduced == {p: f"{plain}@{p}" for p in REDUCED}


def test_float32_and_bfloat16_runs_never_share_cache_entries(tiny: Path, tmp_path: Path) -> None:
    calls: dict[str, int] = {}

    def counted(precision: str) -> Any:
        encoder = get_encoder(str(tiny), device="cpu", precision=precision)
        encode = encoder.encode

        def spy(texts: Any, **kwargs: Any) -> np.ndarray:
            calls[precision] = calls.get(precision, 0) + len(texts)
            return encode(texts, **kwargs)

        encoder.encode = spy  # type: ignore[method-assign]
        return encoder

    with EmbeddingCache(tmp_path / "cache") as cache:
        f32, bf16 = counted("float32"), counted("bfloat16")
        first32 = embed(f32, TINY_TEXTS, kind="document", cache=cache)
        first16 = embed(
            bf16, TINY_TEXTS, kind="document", cache=cache
        )  # float32 entries must not answer this
        assert calls == {"float32": len(TINY_TEXTS), "bfloat16": len(TINY_TEXTS)}
        assert not np.array_equal(first32, first16)  # bfloat16 really computed something else
        assert cosines(first32, first16).min() > 0.99
        assert len(cache) == 2 * len(TINY_TEXTS)
        # each run reads back exactly its own vectors, encoding nothing
        assert np.array_equal(embed(f32, TINY_TEXTS, kind="document", cache=cache), first32)
        assert np.array_equal(embed(bf16, TINY_TEXTS, kind="document", cache=cache), first16)
        assert calls == {"float32": len(TINY_TEXTS), "bfloat16": len(TINY_TEXTS)}
        for encoder in (f32, bf16):
            identity = model_identity(encoder, cache.digests)
            assert (cache.rows(identity, "document", TINY_TEXTS) >= 0).all()


# -- the CLI ------------------------------------------------------------------------------------------------------------


def test_embed_takes_precision_choices_from_the_registry(
    tiny: Path, tiny_ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    from qadapter.cli import main

    with pytest.raises(SystemExit) as bad:
        main(["embed", str(tiny_ws.path), "--model", str(tiny), "--precision", "fp8"])
    err = capsys.readouterr().err
    assert bad.value.code == 2 and all(p in err for p in PRECISIONS)

    main(
        [
            "embed",
            str(tiny_ws.path),
            "--model",
            str(tiny),
            "--device",
            "cpu",
            "--precision",
            "bfloat16",
            "--json",
        ]
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["precision"] == "bfloat16" and summary["documents"] == 2
    identity = get_encoder(str(tiny), precision="bfloat16").cache_identity()  # type: ignore[attr-defined]
    with EmbeddingCache(tiny_ws.state_dir / CACHE_DIR) as cache:
        assert (cache.rows(identity, "document", ["river city", "solar panel cost"]) >= 0).all()
        float32 = get_encoder(str(tiny)).cache_identity()  # type: ignore[attr-defined]
        assert (cache.rows(float32, "document", ["river city"]) < 0).all()


def test_the_precision_environment_variable_reaches_embed(
    tiny: Path, tiny_ws: Workspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from qadapter.cli import main

    monkeypatch.setenv("QADAPTER_PRECISION", "float16")
    main(["embed", str(tiny_ws.path), "--model", str(tiny), "--device", "cpu", "--json", "--no-progress"])
    assert json.loads(capsys.readouterr().out)["precision"] == "float16"


def test_evaluate_encodes_at_the_precision_given(
    tiny: Path, tiny_ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    from qadapter.cli import main

    args = ["evaluate", str(tiny_ws.path), "--model", str(tiny), "--device", "cpu", "--json", "--no-progress"]
    main([*args, "--precision", "bfloat16"])
    assert json.loads(capsys.readouterr().out)["n_queries"] == 2
    identity = get_encoder(str(tiny), precision="bfloat16").cache_identity()  # type: ignore[attr-defined]
    with EmbeddingCache(tiny_ws.state_dir / CACHE_DIR) as cache:
        assert (cache.rows(identity, "query", ["what river", "solar energy price"]) >= 0).all()


def test_train_and_serve_pass_the_precision_to_the_encoder(
    tiny: Path, tiny_ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qadapter.serve
    import qadapter.train
    from qadapter.cli import main

    seen: dict[str, Any] = {}

    def fake_train(workspace: str, **kwargs: Any) -> Any:
        seen["train"] = kwargs
        raise SystemExit(0)

    def fake_serve(adapter: Path, **kwargs: Any) -> None:
        seen["serve"] = kwargs

    monkeypatch.setattr(qadapter.train, "train", fake_train)
    monkeypatch.setattr(qadapter.serve, "serve", fake_serve)
    with pytest.raises(SystemExit):
        main(["train", str(tiny_ws.path), "-o", str(tmp_path / "a"), "--model", str(tiny), "--device", "cpu"])
    assert seen["train"]["model"] == str(tiny)  # float32: train() builds its encoder as before
    with pytest.raises(SystemExit):
        main(
            [
                "train",
                str(tiny_ws.path),
                "-o",
                str(tmp_path / "a"),
                "--model",
                str(tiny),
                "--precision",
                "bfloat16",
            ]
        )
    encoder = seen["train"]["model"]
    assert isinstance(encoder, SentenceTransformerEncoder) and encoder.precision == "bfloat16"
    assert "precision" not in seen["train"]  # not a training config option

    (tmp_path / "adapter").mkdir()
    main(["serve", str(tmp_path / "adapter"), "--precision", "BFLOAT16"])
    assert seen["serve"]["precision"] == "bfloat16"


def test_a_vector_store_collection_is_named_apart_for_reduced_precision(tiny: Path) -> None:
    from qadapter.evaluate.evaluation import store_key

    float32 = get_encoder(str(tiny))
    assert store_key(float32) == float32.name  # existing collections keep their name
    assert store_key(get_encoder(str(tiny), precision="float16")) == f"{float32.name}@float16"


def test_run_embeds_trains_and_evaluates_at_the_precision_and_device_given(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole job: every vector of corpus, training and test queries comes from the bfloat16 model (none from a
    float32 one, which would be a second, silent encoding pass)."""
    from qadapter.cli import main

    ws = Workspace(tmp_path / "ws")
    docs = [Document(f"d{i}", f"topic {i} {word}") for i, word in enumerate(TINY_TEXTS * 2)]
    ws.write_corpus(docs)
    ws.write_queries([Query(f"q{i}", f"about {d.text}") for i, d in enumerate(docs)])
    ws.write_qrels("train", {f"q{i}": {f"d{i}": 1} for i in range(6)})
    ws.write_qrels("test", {f"q{i}": {f"d{i}": 1} for i in range(6, len(docs))})
    main(["run", str(ws.path), "--model", str(tiny), "--device", "cpu", "--precision", "bfloat16", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["n_queries"] == len(docs) - 6
    recorded = json.loads((ws.path / "adapter" / "adapter_config.json").read_text())["base_model"]
    assert recorded["name"] == f"st:{tiny.name}" and recorded["precision"] == "bfloat16"
    assert "computed in bfloat16" in (ws.path / "adapter" / "README.md").read_text()  # the model card says so
    bf16 = get_encoder(str(tiny), precision="bfloat16").cache_identity()  # type: ignore[attr-defined]
    f32 = get_encoder(str(tiny)).cache_identity()  # type: ignore[attr-defined]
    with EmbeddingCache(ws.state_dir / CACHE_DIR) as cache:
        texts = [d.text for d in docs]
        questions = [f"about {t}" for t in texts]
        assert (cache.rows(bf16, "document", texts) >= 0).all()
        assert (cache.rows(bf16, "query", questions) >= 0).all()
        assert (cache.rows(f32, "document", texts) < 0).all() and (
            cache.rows(f32, "query", questions) < 0
        ).all()


def test_run_passes_the_device_to_training(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qadapter.train
    from qadapter.cli import main

    seen: dict[str, Any] = {}

    def fake_train(workspace: Any, split: str, **kwargs: Any) -> Any:
        seen.update(kwargs)
        raise SystemExit(0)

    monkeypatch.setattr(qadapter.train, "train", fake_train)
    ws = Workspace(tmp_path / "ws")
    ws.write_corpus([Document("d1", "river city"), Document("d2", "solar panel cost")])
    ws.write_queries([Query("q1", "what river"), Query("q2", "solar energy price")])
    ws.write_qrels("train", {"q1": {"d1": 1}})
    ws.write_qrels("test", {"q2": {"d2": 1}})
    with pytest.raises(SystemExit):
        main(["run", str(ws.path), "--model", str(tiny), "--device", "cpu", "--no-progress"])
    assert seen["device"] == "cpu" and seen["model"] == str(tiny)  # float32: train() builds the encoder there


def test_import_from_store_caches_the_stored_vectors_under_the_asked_precision(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``import --from-store --precision bfloat16``: the check runs the bfloat16 model on the CPU, and the stored
    vectors answer later bfloat16 runs (not float32 ones, whose identity differs)."""
    from qadapter.cli import main
    from qadapter.stores import get_store

    texts = ["river city", "solar panel cost", "what does water do"]
    vectors = get_encoder(str(tiny), device="cpu").encode(texts, kind="document")
    with get_store("chroma", tmp_path / "db", "docs", create=True) as store:
        store.add(["d1", "d2", "d3"], vectors, texts)
    source = ("import", str(tmp_path / "db"), "--from-store", "chroma", "--collection", "docs")
    options = ("--model", str(tiny), "--device", "cpu", "--precision", "bfloat16", "--json")
    main([*source, "-o", str(tmp_path / "ws"), *options])
    summary = json.loads(capsys.readouterr().out)
    assert summary["precision"] == "bfloat16" and summary["documents"] == 3
    with EmbeddingCache(Workspace(tmp_path / "ws").state_dir / CACHE_DIR) as cache:
        bf16 = get_encoder(str(tiny), precision="bfloat16").cache_identity()  # type: ignore[attr-defined]
        float32 = get_encoder(str(tiny)).cache_identity()  # type: ignore[attr-defined]
        rows = cache.rows(bf16, "document", texts)
        assert (rows >= 0).all() and (cache.rows(float32, "document", texts) < 0).all()
        np.testing.assert_allclose(
            cache.read(bf16, "document", rows), vectors, atol=1e-6
        )  # as chroma stored them


def test_train_compute_dtype_comes_from_the_flag_or_the_config_file_and_is_recorded(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``train --compute-dtype`` (training's autocast dtype) is a TrainConfig field like any other: the flag wins over
    a ``--config`` file, a bad value is refused with the valid ones, and the adapter records the dtype it trained in."""
    from qadapter.adapters import load_adapter
    from qadapter.cli import main

    ws = Workspace(tmp_path / "ws")
    texts = ["river city", "solar panel cost", "what does water do", "the price of energy", "how a city is"]
    ws.write_corpus(Document(f"d{i}", t) for i, t in enumerate(texts))
    ws.write_queries(Query(f"q{i}", f"about {t}") for i, t in enumerate(texts))
    ws.write_qrels("train", {f"q{i}": {f"d{i}": 1} for i in range(len(texts))})
    (tmp_path / "train.toml").write_text('[train]\ncompute_dtype = "float16"\nepochs = 2\n', encoding="utf-8")
    common = [
        *("train", str(ws.path), "--model", str(tiny), "--device", "cpu", "--recipe", "contrastive"),
        *("--pseudo-queries", "0", "--no-learning-curve", "--config", str(tmp_path / "train.toml")),
    ]
    main([*common, "-o", str(tmp_path / "from-file")])
    main([*common, "-o", str(tmp_path / "from-flag"), "--compute-dtype", "bfloat16"])
    capsys.readouterr()
    trained = {
        name: load_adapter(tmp_path / name).config["training"]["config"]["compute_dtype"]
        for name in ("from-file", "from-flag")
    }
    assert trained == {"from-file": "float16", "from-flag": "bfloat16"}
    assert "- compute dtype: bfloat16" in (tmp_path / "from-flag" / "README.md").read_text(encoding="utf-8")
    with pytest.raises(SystemExit) as bad:
        main([*common, "-o", str(tmp_path / "bad"), "--compute-dtype", "fp8"])
    err = capsys.readouterr().err
    assert bad.value.code == 2 and "--compute-dtype" in err and all(p in err for p in PRECISIONS)
