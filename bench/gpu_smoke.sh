#!/usr/bin/env bash
# GPU smoke check (about 5 minutes on one GPU; never required for CI):  bash bench/gpu_smoke.sh
# 1. `ga` and `emd` (fused, and the plain reference) on the embedded model in bf16: step time,
#    tokens/s and peak CUDA memory, side by side;
# 2. generation tokens/s at batch 1 and 16 over 16 prompts (an evaluation's main cost);
# 3. with --experiment: the data-efficiency experiment's GPU preset (the full design, 3 seeds;
#    its target is 8 minutes), then its wall time and results table. Its progress goes to
#    bench/out/gpu-experiment.log; SEMSAFE_EXPERIMENT_LIMIT=SECONDS stops it after that long
#    (resume it with `semsafe experiment data-efficiency --resume FOLDER`).
# It installs the project into .venv with the default torch pin (a CUDA build off this machine).
# On a machine with no package registry whose Python already has the dependencies (and the
# packs on its path), name that interpreter instead: SEMSAFE_PYTHON=python3 bash bench/gpu_smoke.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${SEMSAFE_PYTHON:-}" ]; then
    PY=$SEMSAFE_PYTHON
else
    make install
    PY=.venv/bin/python
fi
rounds=${SEMSAFE_SMOKE_ROUNDS:-2}
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device visible'; print(torch.cuda.get_device_name(0))"
"$PY" -m semsafe model  # the embedded model, converted once, so no timed process pays for it
"$PY" bench/train_step.py --objectives ga,emd,emd@plain,emd_lb --steps 10 --rounds "$rounds" --device cuda --bf16
# 16 prompts, one batch against one at a time: with 32, the unbatched side alone took 45 s of an
# H200 call (2026-11-30), time the experiment below needs within the device's 10-minute calls
"$PY" bench/generate.py --n 16 --batch 16
if [ "${1:-}" = "--experiment" ]; then
    mkdir -p bench/out
    log=bench/out/gpu-experiment.log
    limit=()
    if [ -n "${SEMSAFE_EXPERIMENT_LIMIT:-}" ]; then limit=(timeout "$SEMSAFE_EXPERIMENT_LIMIT"); fi
    start=$(date +%s)
    status=0
    "${limit[@]}" "$PY" -m semsafe experiment data-efficiency --preset gpu 2>&1 | tee "$log" || status=$?
    echo "experiment --preset gpu: $(( $(date +%s) - start )) s, exit status $status"
    out=$(tail -1 "$log")
    if [ "$status" = 0 ] && [ -f "$out/results.md" ]; then cat "$out/results.md"; fi
    exit "$status"
fi
