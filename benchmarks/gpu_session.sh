#!/usr/bin/env bash
# The GPU checks of issue 12 as one call on a one-GPU machine that can download nothing (the device tool's H200:
# Python with torch + CUDA, sentence-transformers, numpy, scipy, click, safetensors, tqdm; no qadapter install, no
# base model). About 5 minutes on an H200 by design; give it 9.
#
# Here, once, before the call (CPU, bundled model, ~1 minute; writes ~10 MiB that git ignores):
#     echo /.gpu/ >> .git/info/exclude
#     .venv/bin/python benchmarks/prepared.py .gpu/appleqa
# The call (device tool): command "bash benchmarks/gpu_session.sh", carry [".gpu"], timeout_s 540.
# Then copy $OUT's gpu.json/.md and train_precision_gpu.json/.md into benchmarks/results/.
#
# Stages and targets (issue 12): bench_gpu.py times the default search on AppleQA on the GPU (target: under 2 s) and on
# the CPU, and a planted workspace of 1M documents: evaluate, single fit (float32 and bfloat16 autocast), and the
# default search (target: trained and evaluated in under 1 minute); bench_train_precision.py checks on AppleQA that a
# bfloat16/float16 compute dtype changes the adapter's quality no more than the seed does.
#
# To check the script here: PYTHON=.venv/bin/python DEVICE=cpu SMALL=--small OUT=/tmp/gpu bash benchmarks/gpu_session.sh
set -o pipefail
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python="${PYTHON:-python3}"
device="${DEVICE:-cuda}"
out="${OUT:-benchmarks/results}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee "$out/gpu_session.log"
"$python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" 2>&1 | tee -a "$out/gpu_session.log"
timeout 330 "$python" benchmarks/bench_gpu.py --device "$device" ${SMALL:-} --appleqa .gpu/appleqa --out "$out" 2>&1 |
    tee -a "$out/gpu_session.log"
timeout 150 "$python" benchmarks/bench_train_precision.py --device "$device" --prepared .gpu/appleqa --out "$out" \
    --name train_precision_gpu 2>&1 | tee -a "$out/gpu_session.log"
