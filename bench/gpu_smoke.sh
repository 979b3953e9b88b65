#!/usr/bin/env bash
# GPU smoke check: 50 steps of `emd` on the embedded model, with step time and memory printed.
# Run wherever a GPU is available (never required for CI):  bash bench/gpu_smoke.sh
# It installs the project into .venv with the default torch pin (a CUDA build off this machine),
# then measures sft and emd side by side and runs a 50-step emd training run.
set -euo pipefail
cd "$(dirname "$0")/.."
make install
export SEMSAFE_RUNS="${SEMSAFE_RUNS:-$PWD/runs-gpu-smoke}"
.venv/bin/python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device visible'; print(torch.cuda.get_device_name(0))"
.venv/bin/python bench/train_step.py --objectives sft,emd,emd_lb,ga --steps 10 --rounds 1 --device cuda
start=$(date +%s)
.venv/bin/semsafe train --config configs/tasft-emd.yaml --set train.steps=50 --set train.logging_steps=10 \
    --set train.save_steps=50 --run-id "gpu-smoke-$(date +%s)"
echo "50-step emd run (prepare included on first use): $(( $(date +%s) - start )) s"
.venv/bin/python -c "import torch; print(f'peak CUDA memory in this check: see bench rows above')"
