#!/usr/bin/env bash
# Prepares benchmarks/gpu_check.sh for a CUDA host that has torch but no package registry (the lent device
# of this workplace): run it here, in the repository root, on a host with pip access to PyPI and the
# crosspose cache filled (`make demo` once fills it).
#
#   .whl/        the pure-Python and manylinux (CPython 3.12) wheels the service needs beyond what a torch
#                CUDA image ships: pydantic, FastAPI, uvicorn, pyzmq, websockets, tomli-w (~4 MB)
#   .gpucache/   the part of $CROSSPOSE_CACHE the measurement reads: the BlazePose weights rebuilt in torch,
#                the exported network, the Pose2Sim clip and its calibration (~40 MB)
#
# Both folders are ignored by git (.git/info/exclude) and travel with the working tree when named in the
# device tool's `carry`: [".whl", ".gpucache"]. Together with the tree they must stay under 64 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${CROSSPOSE_CACHE:-$HOME/.cache/crosspose}"
python="${PYTHON:-python3}"

for dir in .whl .gpucache; do
  grep -qx "/$dir/" .git/info/exclude 2>/dev/null || echo "/$dir/" >> .git/info/exclude
done

rm -rf .whl && mkdir -p .whl
"$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
  pydantic pydantic-core annotated-types typing-inspection fastapi starlette uvicorn pyzmq websockets tomli-w

# The detector's ONNX file (12 MB) stays behind: gpu.py exports it there from blazepose_detector.pt.
need=(models/blazepose_full.pt models/blazepose_detector.pt models/crosspose_fusion.onnx
      extracted/pose2sim-0.10.49)
for item in "${need[@]}"; do
  if [ ! -e "$cache/$item" ]; then
    echo "missing $cache/$item: run 'make demo' (or 'crosspose model build' and 'crosspose demo') once first" >&2
    exit 1
  fi
done
rm -rf .gpucache && mkdir -p .gpucache/models .gpucache/extracted
for item in "${need[@]}"; do cp -r "$cache/$item" ".gpucache/$item"; done

size=$(du -sb .whl .gpucache | awk '{s += $1} END {print s}')
tree=$(git ls-files -z | xargs -0 du -cb | tail -1 | awk '{print $1}')
echo "prepared: .whl + .gpucache $((size / 1048576)) MiB, tracked tree $((tree / 1048576)) MiB (limit 64 MiB together)"
[ $((size + tree)) -lt $((64 * 1048576)) ] || { echo "too large to travel" >&2; exit 1; }
