#!/usr/bin/env bash
# The GPU figures in one call of the device tool: the CUDA-only tests, benchmarks/run.py in
# bf16, benchmarks/paper_round.py and the default suite's notebooks (tools/run_notebooks.py: the
# GPU machine has no Jupyter), each step under its own timeout within one budget, then a summary.
#
#   benchmarks/gpu_check.sh                  # on the GPU machine: DEVICE=cuda, the full sizes
#   DEVICE=cpu benchmarks/gpu_check.sh       # the plumbing on a CPU: tiny sizes, the smoke preset
#
# Writes one JSON line a figure to RESULTS_DIR/gpu_check_<device>_<UTC time>.jsonl, each with the
# step that made it, the device's name and the commit, and one `gpu_check_step` line a step (its
# status, seconds and timeout). Step logs, the notebooks' run store and figures go to SCRATCH. If
# $OUT is set (the device tool), the results file and a tarball of the logs and the notebooks'
# JSON records are copied there. Exit status 0 when every step passed.
#
# Environment (defaults in brackets):
#   DEVICE       cuda or cpu [cuda]
#   BUDGET_S     seconds for all steps together [450]; a step's timeout is cut to what is left,
#                and a step with under MIN_STEP_S [5] left is skipped
#   NOTEBOOKS    the notebooks to run, separated by spaces [all: notebooks/[0-9][0-9]_*.ipynb]
#   RESULTS_DIR  [cuda: benchmarks/results; cpu: build/gpu_check]
#   SCRATCH      [build/gpu_check/<UTC time>]
#   PYTHON       [python3]
#   IMPRF_COMMIT the commit recorded where `git rev-parse HEAD` fails (a copied tree without .git)
set -uo pipefail
cd "$(dirname "$0")/.."

DEVICE=${DEVICE:-cuda}
BUDGET_S=${BUDGET_S:-450}
MIN_STEP_S=${MIN_STEP_S:-5}
PYTHON=${PYTHON:-python3}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
SCRATCH=${SCRATCH:-build/gpu_check/$STAMP}
if [[ $DEVICE == cuda ]]; then RESULTS_DIR=${RESULTS_DIR:-benchmarks/results}; else RESULTS_DIR=${RESULTS_DIR:-build/gpu_check}; fi
read -r -a NOTEBOOK_LIST <<< "${NOTEBOOKS:-$(echo notebooks/[0-9][0-9]_*.ipynb)}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg IMPRF_PROGRESS=0

case $DEVICE in
  cuda)  # the full sizes
    CUDA_TESTS_TIMEOUT=120
    RUN_ARGS=(--device cuda --precision bf16); RUN_TIMEOUT=210
    PAPER_ARGS=(--device cuda); PAPER_TIMEOUT=120
    PRESET=default; NOTEBOOK_TIMEOUT=300 ;;
  cpu)  # every step's plumbing in seconds: one light figure, a narrow paper network, the smoke preset
    CUDA_TESTS_TIMEOUT=120
    RUN_ARGS=(--device cpu --precision bf16 --quick --only clone_images_per_second); RUN_TIMEOUT=120
    PAPER_ARGS=(--device cpu --images 3000 --test-images 500 --hidden 32 --batch 100 --steps 1 --warmup 1 --precision fp32)
    PAPER_TIMEOUT=120
    PRESET=smoke; NOTEBOOK_TIMEOUT=120 ;;
  *) echo "DEVICE=$DEVICE: cuda or cpu" >&2; exit 2 ;;
esac
# The tests that run only where CUDA is: they skip on a CPU, and must pass (not skip) on a GPU.
CUDA_TESTS=(
  "tests/test_train.py::test_cuda_captured_step_gives_the_bits_of_the_eager_step"
  "tests/test_clone.py::test_clone_runs_on_the_data_device"
)

MACHINE=$("$PYTHON" -c "
import sys, torch
if sys.argv[1] == 'cuda' and not torch.cuda.is_available():
    sys.exit(f'gpu_check: DEVICE=cuda, but torch {torch.__version__} sees no CUDA device (DEVICE=cpu checks the plumbing)')
print(torch.cuda.get_device_name(0) if sys.argv[1] == 'cuda' else f'cpu ({torch.get_num_threads()} threads)')
print(torch.__version__)
" "$DEVICE") || exit 2
DEVICE_NAME=$(head -n 1 <<< "$MACHINE")
mkdir -p "$RESULTS_DIR" "$SCRATCH/logs" || exit 2
SCRATCH=$(cd "$SCRATCH" && pwd)  # absolute: the notebooks run in their own folder
STARTED=$SECONDS  # the budget is the steps'
COMMIT=$(git rev-parse HEAD 2>/dev/null || echo "${IMPRF_COMMIT:-unknown}")
SLUG=$(echo "$DEVICE_NAME" | tr 'A-Z' 'a-z' | tr -cs 'a-z0-9' '-' | sed 's/-*$//')
RESULTS="$RESULTS_DIR/gpu_check_${SLUG}_$STAMP.jsonl"
echo "gpu_check: $DEVICE_NAME, torch $(tail -n 1 <<< "$MACHINE"), commit $COMMIT, budget ${BUDGET_S} s"
echo "gpu_check: results $RESULTS, logs $SCRATCH/logs"

# append RECORDS_FILE STEP: the JSON figure lines of a file (lines that are none are skipped), each
# given the step, the device's name and the commit, to the results file.
append() {
  "$PYTHON" - "$1" "$2" "$DEVICE_NAME" "$COMMIT" >> "$RESULTS" <<'EOF'
import json, sys
path, step, device, commit = sys.argv[1:]
for line in open(path, encoding="utf-8", errors="replace"):
    try:
        record = json.loads(line)
    except ValueError:
        continue
    if isinstance(record, dict) and {"name", "value", "unit"} <= set(record):
        print(json.dumps({**record, "step": step, "device": device, "commit": commit}))
EOF
}

# step NAME TIMEOUT_S RECORDS_FILE COMMAND...: COMMAND under min(TIMEOUT_S, budget left), its output
# in logs/NAME.log; the JSON figure lines of RECORDS_FILE ("-": its output) go to the results.
FAILED=0
step() {
  local name=$1 limit=$2 records=$3; shift 3
  local left=$((BUDGET_S - (SECONDS - STARTED))) status rc=0 start=$SECONDS
  local log="$SCRATCH/logs/$name.log"
  ((limit > left)) && limit=$left
  if ((limit < MIN_STEP_S)); then
    status="skipped: ${left} s of the budget left"
  else
    echo "gpu_check: $name (timeout ${limit} s): $*"
    timeout --kill-after=10 "$limit" "$@" > "$log" 2>&1 || rc=$?
    case $rc in
      0) status=ok ;;
      124|137) status="timeout after ${limit} s" ;;
      *) status="failed (exit $rc)"; tail -n 15 "$log" | sed 's/^/    /' ;;
    esac
    [[ $status == ok && $name == cuda_tests && $DEVICE == cuda ]] && grep -q "skipped" "$log" \
      && status="failed: CUDA tests skipped on a GPU"
    [[ $records == - ]] && records=$log
    [[ -f $records ]] && append "$records" "$name"
  fi
  [[ $status == ok ]] || FAILED=1
  echo "gpu_check: $name: $status, $((SECONDS - start)) s"
  "$PYTHON" -c 'import json, sys; print(json.dumps({"name": "gpu_check_step", "value": int(sys.argv[3]), "unit": "s",
    "detail": {"step": sys.argv[1], "status": sys.argv[2], "timeout_s": int(sys.argv[4])}}))' \
    "$name" "$status" "$((SECONDS - start))" "$limit" > "$SCRATCH/step.json"
  append "$SCRATCH/step.json" "$name"
}

step cuda_tests "$CUDA_TESTS_TIMEOUT" - \
  "$PYTHON" -m imprf_utils.numerics -- "$PYTHON" -m pytest -q -rs -p no:cacheprovider "${CUDA_TESTS[@]}"
step run "$RUN_TIMEOUT" - "$PYTHON" benchmarks/run.py "${RUN_ARGS[@]}"
step paper_round "$PAPER_TIMEOUT" - "$PYTHON" benchmarks/paper_round.py "${PAPER_ARGS[@]}"
for notebook in "${NOTEBOOK_LIST[@]}"; do  # one process each: a timeout stops one notebook, not the suite
  number=$(basename "$notebook" | cut -c1-2)
  step "notebook_$number" "$NOTEBOOK_TIMEOUT" "$SCRATCH/notebook_$number.jsonl" \
    "$PYTHON" tools/run_notebooks.py --preset "$PRESET" -p "device=$DEVICE" -p "run_store=$SCRATCH/runs" \
    -p "figures_dir=$SCRATCH/figures" --record "$SCRATCH/notebook_$number.jsonl" "$notebook"
done

echo
echo "gpu_check summary: $DEVICE_NAME, commit $COMMIT, $((SECONDS - STARTED)) s of ${BUDGET_S} s"
"$PYTHON" - "$RESULTS" <<'EOF'
import json, sys
records = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
for r in records:
    if r["name"] == "gpu_check_step":
        print(f"  {r['step']:<14} {r['detail']['status']:<40} {r['value']:>5} s (timeout {r['detail']['timeout_s']} s)")
print("figures:")
for r in records:
    if r["name"] != "gpu_check_step":
        print(f"  {r['name']:<48} {r['value']:>12g} {r['unit']}")
EOF
echo "results: $RESULTS"
if [[ -n ${OUT:-} && -d ${OUT:-} ]]; then
  cp "$RESULTS" "$OUT/"
  (cd "$SCRATCH" && find logs figures -name '*.log' -o -name '*.json' 2>/dev/null | tar czf "$OUT/gpu_check_logs.tar.gz" -T -)
  echo "copied to \$OUT: $(basename "$RESULTS"), gpu_check_logs.tar.gz"
fi
exit "$FAILED"
