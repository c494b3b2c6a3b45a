#!/usr/bin/env bash
# The GPU path measured on one CUDA host in one go (issue 18.5), in well under 8 minutes:
# providers, the network per 4- and 8-view set (f32 and f16), the solver cold and tracked on CUDA against
# the CPU, CPU<->GPU parity of heatmaps and 3D, and the live pipeline (the real clip's 4 cameras at 60 fps,
# 8 rendered synthetic cameras at 60 fps). See benchmarks/gpu.py for what each section measures.
#
# On any CUDA host with crosspose installed (pip install -e . with a CUDA build of torch):
#     benchmarks/gpu_check.sh [OUTDIR]
# On a host with torch + CUDA but no package registry (this workplace's lent device): run
# benchmarks/gpu_prepare.sh first where pip works, carry .whl and .gpucache, then the same command; the
# wheels are installed into /tmp/site and the cache copied to /tmp/crosspose-cache.
# Results: OUTDIR (default $OUT, else ./gpu-out): one JSON per section and report.md, the full output.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-gpu-out}}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1

if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site:$PWD/service${PYTHONPATH:+:$PYTHONPATH}"
elif ! python3 -c "import crosspose" 2>/dev/null; then
  export PYTHONPATH="$PWD/service${PYTHONPATH:+:$PYTHONPATH}"
fi
if [ -d .gpucache ]; then
  rm -rf /tmp/crosspose-cache && cp -r .gpucache /tmp/crosspose-cache
  export CROSSPOSE_CACHE=/tmp/crosspose-cache
fi

{
  echo "# crosspose GPU check, $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | sed 's/^/GPU: /'
  echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(nproc) cores"
  timeout 420 python3 benchmarks/gpu.py --out "$out" "${@:2}"
  echo "exit: $?"
} 2>&1 | tee "$out/report.md"
