#!/usr/bin/env bash
# Two training processes on CPU (gloo backend) through `accelerate launch`, exactly as a
# multi-GPU run is launched. Uses the tiny random model so it finishes in about a minute.
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
.venv/bin/accelerate launch --cpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no \
    -m semsafe.train --config configs/tasft-emd.yaml --run-id "$run" \
    --set model=tiny-random --set data.prepared=null --set "data.harmful=$tmp/harmful.jsonl" \
    --set "data.retain=$tmp/retain.jsonl" --set train.steps=6 --set train.batch_size=2 --set train.save_steps=3
cat "$SEMSAFE_RUNS/$run/status.json"; echo
wc -l "$SEMSAFE_RUNS/$run/metrics.jsonl"
