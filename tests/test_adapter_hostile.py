"""Crafted and broken adapter folders, and racing or failing writers: always one ArtifactError, never a traceback,
never a half-written or silently lost adapter (issue 10, items 6 and 8)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from qadapter.adapters import Adapter, load_adapter, save_adapter
from qadapter.adapters.artifact import CONFIG_FILE, MAX_CONFIG_BYTES, WEIGHTS_FILE
from qadapter.data.atomic import atomic_dir, clean_stale
from qadapter.errors import ArtifactError

DIM = 8


def linear(seed: int = 0) -> Adapter:
    rng = np.random.default_rng(seed)
    tensors = {"weight": rng.normal(size=(DIM, DIM)), "bias": rng.normal(size=DIM)}
    return Adapter("linear", DIM, tensors, {"base_model": {"name": "fake", "dim": DIM}})


def write_safetensors(path: Path, tensors: dict[str, tuple[str, tuple[int, ...], bytes]]) -> None:
    """A safetensors file written by hand, so any dtype (bfloat16 included) can be stored."""
    header, offset, blob = {}, 0, b""
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blob += data
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + blob)


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


# -- NaN / Inf -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused_on_save(tmp_path: Path, bad: float) -> None:
    adapter = linear()
    adapter.tensors["weight"][2, 3] = bad
    with pytest.raises(ArtifactError, match=r"tensor 'weight' has 1 NaN or infinite value") as info:
        save_adapter(adapter, tmp_path / "a")
    one_line(info)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weights_are_refused_on_load(tmp_path: Path, bad: float) -> None:
    from safetensors.numpy import save_file

    path = save_adapter(linear(), tmp_path / "a")
    tensors = {"weight": np.eye(DIM, dtype=np.float32), "bias": np.zeros(DIM, dtype=np.float32)}
    tensors["bias"][0] = bad
    save_file(tensors, str(path / WEIGHTS_FILE))
    with pytest.raises(
        ArtifactError, match=r"adapter.safetensors: tensor 'bias' has 1 NaN or infinite"
    ) as info:
        load_adapter(path)
    one_line(info)


# -- crafted folders ---------------------------------------------------------------------------------------------------
def test_a_bfloat16_tensor_is_one_line(tmp_path: Path) -> None:
    path = save_adapter(linear(), tmp_path / "a")
    write_safetensors(
        path / WEIGHTS_FILE,
        {"weight": ("BF16", (DIM, DIM), b"\0" * 2 * DIM * DIM), "bias": ("BF16", (DIM,), b"\0" * 2 * DIM)},
    )
    with pytest.raises(
        ArtifactError, match=r"tensor '(weight|bias)' is stored as BF16; adapters are stored as"
    ) as i:
        load_adapter(path)
    one_line(i)


def test_float16_and_float64_tensors_still_load(tmp_path: Path) -> None:
    path = save_adapter(linear(), tmp_path / "a")
    eye = np.eye(DIM)
    write_safetensors(
        path / WEIGHTS_FILE,
        {"weight": ("F16", (DIM, DIM), eye.astype("<f2").tobytes()), "bias": ("F64", (DIM,), bytes(8 * DIM))},
    )
    x = np.random.default_rng(0).normal(size=(3, DIM)).astype(np.float32)
    np.testing.assert_array_equal(load_adapter(path).transform(x), x)


def _set_config(path: Path, text: str) -> None:
    (path / CONFIG_FILE).write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda c: '{"a":' * 200_000 + "1" + "}" * 200_000, "nested too deeply"),
        (lambda c: c.replace('"dim": 8,', '"dim": ' + "9" * 5000 + ",", 1), "unreadable JSON .*4300 digits"),
        (lambda c: c.replace('"name": "fake"', '"name": 5'), r"'base_model.name' must be a str, got int '5'"),
        (
            lambda c: c.replace('"base_model": {', '"base_model": [{').replace(
                '"dim": 8\n  },', '"dim": 8}],', 1
            ),
            "'base_model' must be an object",
        ),
        (lambda c: c.replace('"dim": 8,', '"dim": true,', 1), "'dim' must be a positive integer"),
    ],
    ids=["nested-200k", "5000-digit-int", "base-model-name-5", "base-model-list", "dim-bool"],
)
def test_crafted_configs_are_one_line(tmp_path: Path, edit: object, match: str) -> None:
    path = save_adapter(linear(), tmp_path / "a")
    config = (path / CONFIG_FILE).read_text(encoding="utf-8")
    _set_config(path, edit(config))  # type: ignore[operator]
    with pytest.raises(ArtifactError, match=match) as info:
        load_adapter(path)
    one_line(info)


def test_a_600_mb_config_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = save_adapter(linear(), tmp_path / "a")
    with (path / CONFIG_FILE).open("r+b") as handle:
        handle.truncate(600 * 1024**2)  # sparse: takes no disk space, but reading it would take 600 MB
    started = time.perf_counter()
    with pytest.raises(
        ArtifactError, match=rf"far too large for an adapter config \(limit {MAX_CONFIG_BYTES:,}\)"
    ):
        load_adapter(path)
    assert time.perf_counter() - started < 1.0


# -- racing and failing writers ------------------------------------------------------------------------------------------
def test_two_racing_writers_never_both_succeed(tmp_path: Path) -> None:
    """Both writers pass the up-front 'does it exist?' check, then publish one after the other."""
    target = tmp_path / "out"
    both_inside = threading.Barrier(2)
    results: dict[str, str] = {}

    def writer(name: str) -> None:
        try:
            with atomic_dir(target) as tmp:
                (tmp / "who.txt").write_text(name)
                both_inside.wait(timeout=10)
            results[name] = "saved"
        except ArtifactError as exc:
            results[name] = str(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values())[-1] == "saved"
    loser = sorted(results.values())[0]
    assert "was created by another writer while this one was saving; nothing was replaced" in loser
    winner = next(n for n, r in results.items() if r == "saved")
    assert (target / "who.txt").read_text() == winner  # the saved adapter is the one that said so
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_stale_temporary_folders_are_cleaned_but_live_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    from qadapter.data import atomic

    host = atomic._host_tag()
    stale = tmp_path / f".ws.{host}-{dead_pid}.abc123.tmp"
    live = tmp_path / f".ws.{host}-{os.getpid()}.def456.tmp"
    other_host = tmp_path / f".ws.00000000-{dead_pid}.ghi789.tmp"
    old_unowned = tmp_path / ".ws.k2j3h4.tmp"
    new_unowned = tmp_path / ".ws.zz9y8x.tmp"
    for folder in (stale, live, other_host, old_unowned, new_unowned):
        folder.mkdir()
        (folder / "corpus.jsonl").write_text("{}\n")
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(old_unowned, (day_ago, day_ago))
    with atomic_dir(tmp_path / "ws") as tmp:
        (tmp / "corpus.jsonl").write_text("{}\n")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert stale.name not in left and old_unowned.name not in left
    assert {live.name, other_host.name, new_unowned.name, "ws"} <= set(left)
    assert clean_stale(tmp_path / "ws") == []


_DISK_FULL = """
import resource, signal, sys
import numpy as np
from qadapter.adapters import Adapter, save_adapter
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, like a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
adapter = Adapter("linear", 256, {"weight": np.eye(256), "bias": np.zeros(256)})
save_adapter(adapter, sys.argv[1])
"""


def test_disk_full_while_saving_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _DISK_FULL, str(tmp_path / "a")], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("qadapter.errors.ArtifactError:") and "cannot save the adapter" in last, (
        proc.stderr
    )
    assert "nothing was written" in last
    assert list(tmp_path.iterdir()) == []
