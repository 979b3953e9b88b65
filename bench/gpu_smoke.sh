#!/usr/bin/env bash
# GPU smoke check (about 5 minutes on one GPU; never required for CI):  bash bench/gpu_smoke.sh
# 1. `ga` and `emd` (fused, and the plain reference) on the embedded model in bf16: step time,
#    tokens/s and peak CUDA memory, side by side;
# 2. generation tokens/s at batch 1 and 16 (an evaluation's main cost).
# It installs the project into .venv with the default torch pin (a CUDA build off this machine).
set -euo pipefail
cd "$(dirname "$0")/.."
make install
.venv/bin/python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device visible'; print(torch.cuda.get_device_name(0))"
.venv/bin/python bench/train_step.py --objectives ga,emd,emd@plain,emd_lb --steps 10 --rounds 2 --device cuda --bf16
.venv/bin/python bench/generate.py --n 32 --batch 16
