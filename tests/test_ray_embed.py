"""``qadapter embed --engine ray`` on a real local Ray (one CPU): the same vectors as the local engine, written to the
same cache, and an interrupted run resumes with only the texts that are left (issue 12)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from qadapter.data import Document, Query, Workspace  # noqa: E402
from qadapter.encoders import (  # noqa: E402
    EmbeddingCache,
    embed,
    get_encoder,
    ray_engine,  # noqa: E402
)
from qadapter.encoders.engines import ENGINES  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from tiny_st_model import WORDS, build_tiny_model  # noqa: E402

N_DOCS = 700  # three chunks of 256 texts


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("m") / "model", seed=5)


def make_workspace(path: Path) -> Workspace:
    rng = np.random.default_rng(0)
    ws = Workspace(path)
    ws.write_corpus(
        [Document(f"d{i}", " ".join(rng.choice(WORDS, size=int(rng.integers(2, 12))))) for i in range(N_DOCS)]
    )
    ws.write_queries([Query(f"q{i}", f"what {WORDS[i]}") for i in range(5)])
    ws.write_qrels("test", {f"q{i}": {f"d{i}": 1} for i in range(5)})
    return ws


def test_engines_come_from_one_registry() -> None:
    assert list(ENGINES) == ["local", "ray"]


def test_ray_engine_gives_the_local_vectors_and_resumes(
    local_ray: None, tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [d.full_text for d in make_workspace(tmp_path / "ws").corpus().values()]
    encoder = get_encoder(str(tiny), device="cpu")
    local = embed(encoder, texts, kind="document")

    todo_sizes: list[int] = []
    real = ray_engine.encode_ray

    def counting(encoder, texts, kind, batch_size):  # type: ignore[no-untyped-def]
        todo_sizes.append(len(texts))
        return real(encoder, texts, kind, batch_size)

    monkeypatch.setattr(ray_engine, "encode_ray", counting)
    put_many = EmbeddingCache.put_many
    calls = {"n": 0}

    def killed_after_one_batch(self, *args):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] > 1:
            raise KeyboardInterrupt("killed")
        put_many(self, *args)

    monkeypatch.setattr(EmbeddingCache, "put_many", killed_after_one_batch)
    with EmbeddingCache(tmp_path / "cache") as cache, pytest.raises(KeyboardInterrupt):
        embed(encoder, texts, kind="document", cache=cache, engine="ray")
    monkeypatch.setattr(EmbeddingCache, "put_many", put_many)
    with EmbeddingCache(tmp_path / "cache") as cache:
        assert len(cache) == 256
        resumed = embed(encoder, texts, kind="document", cache=cache, engine="ray")
        again = embed(
            encoder, texts, kind="document", cache=cache, engine="ray"
        )  # all cached: Ray is not asked
    distinct = len(set(texts))
    assert todo_sizes == [distinct, distinct - 256]  # the resumed run encodes only what the cache lacks
    np.testing.assert_array_equal(resumed, local)
    np.testing.assert_array_equal(again, local)


def test_the_embed_command_lists_the_engines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from qadapter.cli import main

    ws = make_workspace(tmp_path / "ws")
    with pytest.raises(SystemExit) as bad:
        main(["embed", str(ws.path), "--engine", "spark"])
    err = capsys.readouterr().err
    assert bad.value.code == 2 and all(name in err for name in ENGINES)
