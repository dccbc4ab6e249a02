#!/usr/bin/env bash
# The GPU check: on a CUDA machine, in under 10 minutes, runs
#   1. the CUDA test mode: tests marked `cuda` (e.g. a fused cell on CUDA equals the CPU cell)
#      and the trainer/resume tests with GANBENCH_TEST_DEVICE=cuda;
#   2. the engine benchmark (benchmarks/engine.py --device cuda, K = 1, 8, 64, 512; ring8,
#      PacGAN's nets where pacgan-t1 exists, and digits' conv nets);
#   3. a fused slice of a 2-D grid (benchmarks/fused_slice.py; pacgan-t1 where that preset
#      exists, else paper-2d's ring8 cells);
#   4. a small grid through the scheduler with --device cuda (fused groups placed on the GPU,
#      one record per cell): its status line and each record's engine;
# then prints one summary (each part's status and the benchmark tables). Each part has its own
# time limit, so one that hangs cannot eat the others': 150 + 240 + 110 + 60 s = 9 min 20 s at
# most, plus a few seconds of checks.
#
#   bash benchmarks/gpu_check.sh            # from the repository root; PYTHON=... to pick one
# Exit status: 0 when every part passed, 1 when one failed, 2 without CUDA.
set -u
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT="$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")"

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "gpu_check: no CUDA device is visible to $PY (torch.cuda.is_available() is false)" >&2
  exit 2
fi
GPU="$("$PY" -c 'import torch; print(torch.cuda.get_device_name(0))')"

status=0
part() {  # part NAME LIMIT_S CMD...: run with a time limit, keep its output, note its status
  local name="$1" limit="$2"; shift 2
  local start=$SECONDS
  timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  local took=$((SECONDS - start))
  if [ $rc -eq 0 ]; then
    echo "$name: passed (${took}s)" >>"$OUT/summary"
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    echo "$name: TIMED OUT after ${limit}s" >>"$OUT/summary"; status=1
  else
    echo "$name: FAILED (exit $rc, ${took}s; log $OUT/$name.log)" >>"$OUT/summary"; status=1
  fi
}

echo "gpu_check on $GPU; logs in $OUT" | tee "$OUT/summary.head"
# the fused-engine file's CPU tests are left out (-k): they train on the CPU whatever the mode
part cuda-tests 150 env GANBENCH_TEST_DEVICE=cuda "$PY" -m pytest -q -x -p no:cacheprovider \
  -m "not slow" -k "cuda or not test_fused_engine" \
  tests/test_fused_engine.py tests/test_trainer.py tests/test_device_resume.py
if "$PY" -c 'from bench.schedule.grid import load_grid; load_grid("pacgan-t1")' >/dev/null 2>&1; then
  NETS=ring8,pacgan,digits; SLICE=(--grid pacgan-t1)
else
  NETS=ring8,digits; SLICE=(--grid paper-2d --datasets ring8)
fi
part engine-benchmark 240 "$PY" benchmarks/engine.py --device cuda --nets "$NETS" \
  --ks 1,8,64,512 --seconds 2 --rounds 2
# --max-seconds well inside the part's limit: a group started just before it still finishes
part fused-slice 110 "$PY" benchmarks/fused_slice.py "${SLICE[@]}" --device cuda --steps 200 \
  --max-seconds 75
cat >"$OUT/grid.toml" <<'TOML'
description = "gpu_check: 2 variants x 4 seeds through the scheduler on the GPU"
design = "add-one"
tricks = ["wgan_gp"]
seeds = [0, 1, 2, 3]

[[data]]
name = "ring8"
steps = 300
batch_size = 256
checkpoint_every = 100
TOML
part fused-run 60 "$PY" -m bench.cli run --grid "$OUT/grid.toml" --store "$OUT/store" \
  --device cuda --workers 1 --curve-every 0
"$PY" - "$OUT/store" >"$OUT/fused-run.engines" 2>&1 <<'PY'
import sys
from bench.store import Store
with Store(sys.argv[1], create=False) as s:
    for r in s.records():
        print(f"  {r.label:<10} seed {r.config['seed']} {r.status:<8} step {r.step} "
              f"device {r.device} engine {r.runtime.get('engine')}")
PY

echo
echo "== summary: gpu_check on $GPU =="
cat "$OUT/summary"
echo "-- cuda-tests (last lines)"; tail -n 3 "$OUT/cuda-tests.log"
echo "-- engine benchmark"; cat "$OUT/engine-benchmark.log"
echo "-- fused slice (${SLICE[*]})"; cat "$OUT/fused-slice.log"
echo "-- fused run through the scheduler (last lines; records)"; tail -n 2 "$OUT/fused-run.log"
cat "$OUT/fused-run.engines"
exit $status
