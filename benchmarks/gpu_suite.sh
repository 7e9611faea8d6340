#!/usr/bin/env bash
# The GPU checks in one call, on a bare CUDA machine with PyTorch (and numpy, pillow, PyYAML, tqdm,
# safetensors, huggingface_hub) already installed; at most ~8 minutes; everything goes to OUT.
#
#   bash benchmarks/gpu_suite.sh OUT          (OUT defaults to $OUT, else gpu_results)
#
# It installs only this package (pip install --no-deps -e .). pytest runs the CUDA-marked tests
# when it is importable; carry wheels and set WHEELS=DIR to install it offline. Each step has its own
# time limit and a failing step does not stop the others; steps.txt lists each step's exit code.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-gpu_results}}
mkdir -p "$OUT"
STEPS="$OUT/steps.txt"
: >"$STEPS"

step() {  # step NAME SECONDS COMMAND...: run it, log it, record its exit code
  local name=$1 limit=$2
  shift 2
  local start=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "$name rc=$rc ${limit}s-limit took=$((SECONDS - start))s" | tee -a "$STEPS"
}

step install 120 python -m pip install --no-deps -e .
if [ -n "${WHEELS:-}" ]; then step install-pytest 60 python -m pip install --no-index --find-links "$WHEELS" pytest; fi
step environment 30 python -c "
import json, torch, platform
from tinycats.perf import peak_matmul_flops
d = torch.device('cuda')
print(json.dumps({'torch': torch.__version__, 'python': platform.python_version(), 'gpu': torch.cuda.get_device_name(0),
                  'bf16_matmul_peak_flops': peak_matmul_flops(d, torch.bfloat16)}, indent=1))"
cp "$OUT/environment.log" "$OUT/environment.json" 2>/dev/null

if python -c "import pytest" 2>/dev/null; then
  step cuda-tests 120 python -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda.py tests/test_benchmark.py
else
  echo "cuda-tests skipped: pytest is not installed (set WHEELS=DIR with a pytest wheel)" | tee -a "$STEPS"
fi

for mode in eager default max-autotune reduce-overhead; do
  flags=(--model tinydit-128 --batch-size 256 --device cuda --precision bf16 --steps 20 --warmup 5)
  [ "$mode" != eager ] && flags+=(--compile --compile-mode "$mode")
  step "train-throughput-$mode" 150 python benchmarks/train_throughput.py "${flags[@]}" --json "$OUT/train_throughput_$mode.json"
done

# tinycats train end to end at 128 px on CUDA for ~1 minute, stopped, then resumed to a new total.
step toy-cats-128 60 python -m tinycats data synth "$OUT/toycats" --per-class 40 --test-per-class 4 --image-size 128
run=(python -m tinycats train "$OUT/toycats" --config cpu-demo --model tinydit-128 --image-size 128 --device cuda
     --checkpoint-dir "$OUT/run/checkpoints" --log-dir "$OUT/run/outputs" --batch-size 64 --log-interval 20
     --checkpoint-interval 100 --sample-interval 0 --no-progress)
step train-128 60 "${run[@]}" --steps 200
step train-128-resume 60 "${run[@]}" --steps 300 --resume auto

ema=$(ls "$OUT"/run/checkpoints/dit_step_*_ema.pt 2>/dev/null | sort -t_ -k3 -n | tail -1)
if [ -n "$ema" ]; then
  onnx=()
  if python -c "import onnx, onnxruntime" 2>/dev/null; then
    step export-onnx 120 python -m tinycats export-onnx --checkpoint "$ema" --output "$OUT/onnx/generator.onnx"
    onnx=(--onnx "$OUT/onnx/generator.onnx")
  fi
  step benchmark 150 python -m tinycats benchmark --model "$ema" "${onnx[@]}" --device cuda --batch-sizes 1,16,256 \
    --num-warmup 5 --num-runs 20 --benchmark-throughput --report-path "$OUT/benchmark_cuda.json"
fi
echo "done: $OUT/steps.txt"
