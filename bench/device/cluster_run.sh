#!/usr/bin/env bash
# The GPU cluster path on one lent GPU (bench/device/README.md, section 2): Ray Train +
# DeepSpeed ZeRO-2 in bf16 for 50 steps of SmolLM2, the checkpoint reloaded by llara evaluate
# (Ray Data on the GPU), then llara serve on the GPU under bench/serve_load.py. Writes
# train.log, evaluate.json, serve_load.json, environment.json, results.json/.md to $OUT.
set -euo pipefail
KIT=${KIT:-.device-kit}
OUT=${OUT:-runs/device-cluster}
WHEELS=/tmp/llara-wheels
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 COLUMNS=200
python3 bench/device/cluster_run.py prepare --kit "$KIT" --to "$WHEELS"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
    "$WHEELS"/ray-*.whl "$KIT"/c/wheels/*.whl
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile \
    --no-cache-dir --target /tmp/site .
export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH
python3 -c "import json, ray, deepspeed, torch; print(json.dumps({'ray': ray.__version__,
'deepspeed': deepspeed.__version__, 'torch': torch.__version__,
'card': torch.cuda.get_device_name()}))" | tee "$OUT/environment.json"
GGUF=$(ls "$WHEELS"/*.gguf)
time llara train --data "$KIT/a/data" --rec-checkpoint "$KIT/a/sasrec" --llm "$GGUF" \
    --out runs/gpu --workers 1 --gpus --no-progress \
    --set train.batch_size=32 --set train.micro_batch_size=8 --set train.epochs=1 \
    --set train.max_train_samples=1600 --set train.max_eval_samples=94 \
    --set shards.limit=2048 --set distributed.checkpoint_every=25 2>&1 | tee "$OUT/train.log"
time llara evaluate --checkpoint runs/gpu/final --gpus --split val --mode score \
    --json "$OUT/evaluate.json" --no-progress 2>&1 | tee "$OUT/evaluate.log"
time python3 bench/serve_load.py --checkpoint runs/gpu/final --gpus 1 --cpus 4 \
    --concurrency 1 32 --requests 64 --json "$OUT/serve_load.json" 2>&1 | tee "$OUT/serve.log"
python3 bench/device/cluster_run.py summarize --run runs/gpu --out "$OUT"
