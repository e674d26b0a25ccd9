#!/usr/bin/env bash
# The GPU path of issue 17, in one short run on a machine with an NVIDIA GPU (< 5 minutes).
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]        # from the repository root; figures in OUT_DIR/gpu_figures.txt
#
# 1. torch with CUDA: kept when present; else from wheels brought in benchmarks/wheels/ (pip download
#    torch==2.13.0 ... -d benchmarks/wheels on a connected machine), else from PyPI (its Linux x86_64
#    torch wheels are CUDA builds).  The project is installed editable, its other dependencies the same way.
# 2. the CUDA tests (tests/test_step_cuda.py: graph vs eager with every intervention, auto backend,
#    GPU tunes vs CPU tunes for the same seeds), counted.
# 3. the benchmarks: batch-1 step (CPU baseline, numpy fp32, int8, GPU eager, GPU CUDA graph), tokens/s
#    and 30,000 tunes on the GPU, voices in time at 240 BPM on the GPU.
# Targets: batch-1 step <= 30 us, 30,000 tunes <= 20 s, 64 voices in time at 240 BPM.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-out}}
mkdir -p "$OUT"
FIG="$OUT/gpu_figures.txt"
PY=${PYTHON:-python3}
T0=$(date +%s)
exec > >(tee "$OUT/gpu_check.log") 2>&1
elapsed() { echo "[$(( $(date +%s) - T0 )) s] $*"; }

has_cuda() { $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; }
if ! has_cuda; then
    elapsed "installing torch with CUDA"
    if compgen -G "benchmarks/wheels/*.whl" > /dev/null; then
        $PY -m pip install -q --no-index --find-links benchmarks/wheels torch
    else
        $PY -m pip install -q "torch==2.13.0" || $PY -m pip install -q torch
    fi
fi
if ! $PY -c "import folkrnn_live, scipy, safetensors, mido, pytest, pytest_asyncio, pythonosc" 2>/dev/null; then
    elapsed "installing the project"
    if compgen -G "benchmarks/wheels/*.whl" > /dev/null; then
        $PY -m pip install -q --no-index --find-links benchmarks/wheels -e ".[test]" \
            || $PY -m pip install -q --no-index --find-links benchmarks/wheels -e . pytest pytest-asyncio
    else
        $PY -m pip install -q -e . pytest pytest-asyncio
    fi
fi
has_cuda || { echo "no CUDA device visible to torch: nothing to check" | tee "$FIG"; exit 1; }

{
    echo "# GPU check, $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
    $PY -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name())"
    echo "CPU cores: $(nproc)"
} | tee "$FIG"

elapsed "CUDA tests"
timeout 120 $PY -m pytest tests/test_step_cuda.py -q -rs -p no:cacheprovider 2>&1 | tail -15 \
    | tee "$OUT/gpu_tests.txt"
echo "## tests: $(tail -1 "$OUT/gpu_tests.txt")" >> "$FIG"

elapsed "batch-1 step"
timeout 60 $PY benchmarks/bench_step.py --quick --parts batch1 --json "$OUT/gpu_batch1.json" | tee "$OUT/gpu_batch1.txt"
{ echo "## batch-1 step (target <= 30 us on the GPU)"; grep -E "us .*baseline|->" "$OUT/gpu_batch1.txt"; } >> "$FIG"

elapsed "tokens/s and 30,000 tunes on the GPU"
timeout 150 $PY benchmarks/bench_step.py --device cuda --parts throughput tunes --json "$OUT/gpu_tunes.json" \
    | tee "$OUT/gpu_tunes.txt"
{ echo "## throughput and 30,000 tunes (target <= 20 s)"; grep -E "tokens/s|tunes at batch" "$OUT/gpu_tunes.txt"; } >> "$FIG"

elapsed "voices in time at 240 BPM on the GPU"
# Voices stepped as one batch (one CUDA graph replay for all) and one by one, side by side; many voices
# on one beat grid need a longer lookahead (28 int8 voices on the 2-core CPU needed 0.1 s).
timeout 120 $PY benchmarks/bench_voices.py --device cuda --lookahead 0.1 --counts 16 32 48 64 --seconds 5 \
    --json "$OUT/gpu_voices.json" \
    | tee "$OUT/gpu_voices.txt"
{ echo "## voices in time at 240 BPM (target 64)"; grep -E "voices|most" "$OUT/gpu_voices.txt"; } >> "$FIG"

elapsed "done"
echo "total $(( $(date +%s) - T0 )) s" >> "$FIG"
cat "$FIG"
