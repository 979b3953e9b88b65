#!/usr/bin/env bash
# Bundle what a machine with no package registry needs to run bench/gpu_smoke.sh: the packs'
# files semsafe reads, the cached judges, and wheels of the packages such a machine's Python may
# lack or hold in another version (pass them as NAME==VERSION; the defaults are what the GPU
# run of 2026-11-30 needed beside an image with torch, transformers 5.17 and peft 0.21.0).
# Writes OUT/bundle.tgz, split into parts of at most PART_MB (a transfer limit) as OUT/part_NN.
#   bash bench/offline_bundle.sh OUT [PART_MB] [NAME==VERSION ...]
# There, from the repository root:
#   cat OUT/part_* | tar -xz -C /tmp/b
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site /tmp/b/whl/*.whl
#   PYTHONPATH=/tmp/site:/tmp/b/packs:$PWD SEMSAFE_CACHE=/tmp/b/cache SEMSAFE_PYTHON=python3 \
#       bash bench/gpu_smoke.sh --experiment
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bash bench/offline_bundle.sh OUT [PART_MB] [NAME==VERSION ...]}
part_mb=${2:-60}
shift $(( $# > 1 ? 2 : 1 ))
wheels=("$@")
if [ ${#wheels[@]} -eq 0 ]; then
    wheels=(pot==0.9.6.post1 gguf==0.19.0 plotly==7.1.0 transformers==5.24.0 peft==0.21.2)
fi
make install >/dev/null
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
.venv/bin/python - "$stage" <<'PY'
import shutil, sys
from pathlib import Path
from semsafe.packs import PACKS, pack_dir
from semsafe.paths import cache_dir

stage = Path(sys.argv[1])
for name, pack in PACKS.items():
    for rel in pack.reads:  # the files semsafe reads from each pack (packs.py declares them)
        src, dst = pack_dir(name) / rel, stage / "packs" / PACKS[name].module / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
judges = cache_dir() / "judges"  # trained once; carrying them spares the other machine that work
if not judges.is_dir():
    sys.exit(f"no trained judges in {judges}: run `.venv/bin/semsafe judges` once first")
shutil.copytree(judges, stage / "cache" / "judges")
PY
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$stage/whl" "${wheels[@]}"
mkdir -p "$out"
tar -C "$stage" -cf - . | gzip -1 > "$out/bundle.tgz"
split -b "${part_mb}M" -d "$out/bundle.tgz" "$out/part_"
rm "$out/bundle.tgz"
ls -l "$out"
