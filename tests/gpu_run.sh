#!/usr/bin/env bash
# The whole GPU run as one device call: the gpu-marked tests, then tests/gpu_suite.py with the time that is left,
# so that both end inside the device tool's 10-minute command limit with every result written to OUT.
#
#   bash tests/gpu_run.sh OUT [TOTAL_S [SUITE_ARGS...]]   # TOTAL_S: the call's time, default 540 (timeout_s 590)
#   bash tests/gpu_run.sh /tmp/rehearsal 300 --tiny          # a rehearsal on any machine
#
# OUT gets nvidia-smi.txt, pytest_gpu.log, gpu_suite.log, gpu_suite.json and gpu_suite.md (the device tool
# brings back at most 8 files). It runs from the checkout with PYTHONPATH=., as the GPU machine has no install.
set -uo pipefail
out=${1:?usage: bash tests/gpu_run.sh OUT [TOTAL_S [SUITE_ARGS...]]}
total=${2:-540}
[[ $total =~ ^[0-9]+$ ]] && ((total >= 60)) \
    || { echo "gpu_run: TOTAL_S=$total; accepted: whole seconds, at least 60 (default 540)" >&2; exit 2; }
shift $(($# < 2 ? $# : 2))
mkdir -p "$out" && out=$(cd "$out" && pwd) || exit
cd "$(dirname "$0")/.."
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1  # keeps a carried wheels folder (/tmp/site)
python=${PYTHON:-python3}  # the GPU machine's python3 holds its torch
nvidia-smi >"$out/nvidia-smi.txt" 2>&1 || echo "gpu_run: nvidia-smi failed (see nvidia-smi.txt)"
# the gpu-marked tests get at most a third of the time; the suite gets the rest but a margin for writing out
timeout $((total / 3)) "$python" -m pytest -m gpu -rA -p no:cacheprovider 2>&1 | tee "$out/pytest_gpu.log"
tests=${PIPESTATUS[0]}
"$python" tests/gpu_suite.py "$out" --budget $((total - SECONDS - 45)) "$@" 2>&1 | tee "$out/gpu_suite.log"
suite=${PIPESTATUS[0]}
echo "gpu_run: pytest -m gpu exit $tests, gpu_suite exit $suite, $SECONDS s"
exit $((tests || suite))
