#!/usr/bin/env bash
# GPU smoke check (about 5 minutes on one GPU; never required for CI):  bash bench/gpu_smoke.sh
# 1. `ga` and `emd` (fused, and the plain reference) on the embedded model in bf16: step time,
#    tokens/s and peak CUDA memory, side by side;
# 2. generation tokens/s at batch 1 and 16 (an evaluation's main cost);
# 3. with --experiment: the data-efficiency experiment's GPU preset (the full design, 3 seeds;
#    its target is 8 minutes), then its wall time and results table.
# It installs the project into .venv with the default torch pin (a CUDA build off this machine).
set -euo pipefail
cd "$(dirname "$0")/.."
make install
.venv/bin/python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device visible'; print(torch.cuda.get_device_name(0))"
.venv/bin/python bench/train_step.py --objectives ga,emd,emd@plain,emd_lb --steps 10 --rounds 2 --device cuda --bf16
.venv/bin/python bench/generate.py --n 32 --batch 16
if [ "${1:-}" = "--experiment" ]; then
    start=$(date +%s)
    out=$(.venv/bin/semsafe experiment data-efficiency --preset gpu | tail -1)
    echo "experiment --preset gpu: $(( ($(date +%s) - start) / 60 )) min -> $out"
    cat "$out/results.md"
fi
