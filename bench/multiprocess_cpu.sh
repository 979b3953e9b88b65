#!/usr/bin/env bash
# Two training processes on CPU (gloo backend), launched with torchrun: the same `semsafe.train`
# module a multi-GPU `accelerate launch --multi_gpu` runs (accelerate's --cpu launcher needs MPI
# for several processes, so plain torchrun is the CPU route). Tiny random model: about a minute.
#   bash bench/multiprocess_cpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export SEMSAFE_RUNS="${SEMSAFE_RUNS:-$(mktemp -d)}"
tmp=$(mktemp -d)
.venv/bin/python - "$tmp" <<'PY'
import sys
from semsafe.data import Record, save_records
out = sys.argv[1]
save_records([Record(f"h{i}", f"Harmful request {i}?", f"Sure, here is bad thing {i}.") for i in range(8)], f"{out}/harmful.jsonl")
save_records([Record(f"r{i}", f"What is {i} plus {i}?", f"{i} plus {i} is {2*i}.") for i in range(16)], f"{out}/retain.jsonl")
PY
run="ddp-cpu-$(date +%s)"
OMP_NUM_THREADS=1 .venv/bin/torchrun --standalone --nproc_per_node 2 -m semsafe.train --config configs/tasft-emd.yaml --run-id "$run" \
    --set model=tiny-random --set data.prepared=null --set "data.harmful=$tmp/harmful.jsonl" \
    --set "data.retain=$tmp/retain.jsonl" --set train.steps=6 --set train.batch_size=2 --set train.save_steps=3
cat "$SEMSAFE_RUNS/$run/status.json"; echo
wc -l "$SEMSAFE_RUNS/$run/metrics.jsonl"
# 16 retain examples, 2 per process per step: 2 processes make an epoch 4 steps, so 6 steps = 1.5 epochs
# (a single process would report 0.75)
tail -n 1 "$SEMSAFE_RUNS/$run/metrics.jsonl"
