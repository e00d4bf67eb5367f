#!/usr/bin/env bash
# benchmarks/gpu_trainer.py on a lent GPU machine (no network): install the wheels carried in
# benchmarks/gpu_wheels (see the script's docstring), take along the table of an earlier call
# (benchmarks/results/gpu_trainer_nvidia*.json) and write the table where the device tool
# returns files ($OUT). Arguments go to the script, e.g.
#   bash benchmarks/gpu_trainer.sh --rows 8b-lora,8b-qlora,8b-qlora-28k
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
if compgen -G "benchmarks/gpu_wheels/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/gpu-trainer-site benchmarks/gpu_wheels/*.whl
  export PYTHONPATH="/tmp/gpu-trainer-site${PYTHONPATH:+:$PYTHONPATH}"
fi
python3 -c "import torch, transformers, trl, peft, bitsandbytes, datasets, accelerate as a
print('torch', torch.__version__, 'transformers', transformers.__version__, 'trl', trl.__version__,
      'peft', peft.__version__, 'bitsandbytes', bitsandbytes.__version__, 'accelerate', a.__version__)"
out="${OUT:-benchmarks/results}"
mkdir -p "$out"
if [ "$out" != benchmarks/results ]; then
  cp benchmarks/results/gpu_trainer_nvidia*.json "$out"/ 2>/dev/null || true
fi
exec python3 benchmarks/gpu_trainer.py --results-dir "$out" "$@"
