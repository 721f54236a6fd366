"""GPU: the stages of bench_scale.py on one device, in under 5 minutes on a one-GPU machine.

Stages: ``encode`` (a random-weight model of the all-MiniLM-L6-v2 architecture, 6 layers, 384 hidden, on synthetic
token ids: encoding speed only, no download), ``single_fit`` and ``train_default`` (planted workspace of
``--docs`` documents, see bench_scale.py; training and validation on ``--device``; ``single_fit_bfloat16`` is the
single fit with ``compute_dtype="bfloat16"``, autocast), ``evaluate`` (exact blockwise
search of the test queries on the device). With ``--appleqa DIR`` (a workspace made by benchmarks/prepared.py, whose
cache holds the real model's vectors) also ``appleqa_default``: the train stage's default search on AppleQA on the
device, and ``appleqa_default_cpu``, the same on the CPU. ``--small`` shrinks everything so that the script can be
checked on a CPU.

Run from the repository root::

    python benchmarks/bench_gpu.py --device cuda            # on the GPU machine: 1M documents
    bash benchmarks/gpu_session.sh                          # the GPU machine's one call (see that file)
    python benchmarks/bench_gpu.py --device cpu --small     # the check that it runs

Writes ``benchmarks/results/gpu.json`` and ``gpu.md`` (``--out`` elsewhere for the CPU check).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import RESULTS, command_line, machine_line, machine_note, write_results  # noqa: E402
from bench_scale import hits, planted  # noqa: E402


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def stage_encode(device: str, n_texts: int, seq_len: int) -> dict[str, Any]:
    import torch
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536
    )
    torch.manual_seed(0)
    model = BertModel(config).to(device).eval()
    if device.startswith("cuda"):
        model = model.half()
    ids = torch.randint(1000, 30000, (n_texts, seq_len))
    start = time.perf_counter()
    with torch.no_grad():
        for s in range(0, n_texts, 256):
            batch = ids[s : s + 256].to(device)
            out = model(input_ids=batch, attention_mask=torch.ones_like(batch)).last_hidden_state.mean(1)
            out.float().cpu()
    _sync(device)
    seconds = time.perf_counter() - start
    return {
        "seconds": round(seconds, 2),
        "texts": n_texts,
        "tokens_per_text": seq_len,
        "texts_per_s": round(n_texts / seconds),
    }


def stage_train(
    data: dict[str, Any], device: str, default: bool, compute_dtype: str = "float32"
) -> dict[str, Any]:
    from qadapter.core.vectors import search
    from qadapter.train.config import TrainConfig
    from qadapter.train.selection import default_candidates, select
    from qadapter.train.trainer import fit

    n = len(data["Q"])
    config = TrainConfig(device=device, compute_dtype=compute_dtype)
    start = time.perf_counter()
    if default:
        result = select(
            data["Q"], data["D"], [{i: 1} for i in range(n)], candidates=default_candidates(config)
        )
        adapter, extra = result.adapter, {"chosen": result.chosen}
    else:
        pairs = np.stack([np.arange(n), np.arange(n)], axis=1)
        fitted = fit(data["Q"], data["D"], pairs, config)
        adapter, extra = fitted.adapter, {"pairs_per_epoch": fitted.pairs_per_epoch}
    seconds = time.perf_counter() - start
    idx, _ = search(adapter.transform(data["T"]), data["D"], k=10, device=device)
    return {"seconds": round(seconds, 2), **extra, **hits(idx, data["test_docs"])}


def stage_evaluate(data: dict[str, Any], device: str) -> dict[str, Any]:
    from qadapter.core.vectors import search

    start = time.perf_counter()
    idx, _ = search(data["T"], data["D"], k=10, device=device)
    _sync(device)
    return {"seconds": round(time.perf_counter() - start, 2), "base": hits(idx, data["test_docs"])}


def stage_appleqa(prepared_ws: Path, device: str) -> dict[str, Any]:
    """The train stage's default search on AppleQA (``qadapter.train.train``, default recipe) on ``device``, reading
    the real model's vectors from a workspace made by benchmarks/prepared.py (nothing is encoded)."""
    from prepared import load

    from qadapter.train import train

    ws, encoder = load(prepared_ws)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = train(ws, output=Path(tmp) / "adapter", model=encoder, device=device)
        _sync(device)
        seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 2), "chosen": result.chosen, "device": device}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--small", action="store_true", help="tiny sizes, for checking the script on a CPU")
    parser.add_argument("--docs", type=int, default=None)
    parser.add_argument(
        "--appleqa",
        type=Path,
        default=None,
        help="a workspace made by benchmarks/prepared.py: also time the default search on AppleQA (and on the CPU)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    from qadapter.core.device import resolve_device

    device = resolve_device(args.device)
    n_docs = args.docs or (500 if args.small else 1_000_000)
    n_test = 100 if args.small else 10_000
    n_texts, seq_len = (64, 32) if args.small else (4_515, 64)
    machine = machine_note()
    if device.startswith("cuda"):
        import torch

        machine["gpu"] = torch.cuda.get_device_name(torch.device(device))
    stages: dict[str, Any] = {"encode": stage_encode(device, n_texts, seq_len)}
    print("encode", stages["encode"], flush=True)
    if args.appleqa is not None:
        runs = {"appleqa_default": device, **({"appleqa_default_cpu": "cpu"} if device != "cpu" else {})}
        for name, where in runs.items():
            stages[name] = stage_appleqa(args.appleqa, where)
            print(name, stages[name], flush=True)
    data = planted(n_docs, n_test)
    for name, run in (
        ("evaluate", lambda: stage_evaluate(data, device)),
        ("single_fit", lambda: stage_train(data, device, default=False)),
        ("single_fit_bfloat16", lambda: stage_train(data, device, default=False, compute_dtype="bfloat16")),
        ("train_default", lambda: stage_train(data, device, default=True)),
    ):
        stages[name] = run()
        print(name, stages[name], flush=True)
    result = {
        "machine": machine,
        "command": command_line("bench_gpu.py"),
        "device": device,
        "docs": n_docs,
        "stages": stages,
    }
    lines = [
        "# GPU: bench_scale's stages on one device",
        "",
        f"Command (from the repository root): `{result['command']}`",
        "",
        machine_line(machine),
        "",
        f"Device {device} ({machine.get('gpu', 'no GPU')}); planted workspace of {n_docs:,} documents (one training query each), {n_test:,} test "
        "queries; encode = random-weight MiniLM-architecture model on synthetic token ids.",
        "",
        "| stage | seconds | notes |",
        "|---|---:|---|",
        *[
            f"| {k} | {v['seconds']} | { {x: y for x, y in v.items() if x != 'seconds'} } |"
            for k, v in stages.items()
        ],
    ]
    write_results(args.out, "gpu", result, lines)


if __name__ == "__main__":
    main()
