#!/usr/bin/env bash
# The first thing to run on a CUDA machine: ddpglab's GPU tests, then member-steps/s at
# K = 1, 30 and 256 in fp32 and bf16 against the card's measured GEMM rate, one table.
# Sized to finish within 4 minutes (not yet run on a GPU); nothing is installed but the
# project and its dependencies, never torch.
#
#   bash benchmarks/gpu_check.sh                 # from the repository root
#   WHEELS=.whl bash benchmarks/gpu_check.sh     # offline: install the deps from wheels
#   DEVICE=cpu MEMBERS=1,2 STEPS=200 UPDATES=20 bash benchmarks/gpu_check.sh   # a dry run
#
# PYTHON (default python3) must hold a CUDA build of torch; the script never installs
# torch. The project's other dependencies (gymnasium, pydantic, ...) are installed by
# pip from the index, or with WHEELS=DIR from the wheels in DIR and nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
MEMBERS=${MEMBERS:-1,30,256}
STEPS=${STEPS:-600}
UPDATES=${UPDATES:-200}

"$PYTHON" - "$DEVICE" <<'EOF' || exit 2
import sys
import torch
device = sys.argv[1]
if device.startswith("cuda") and not torch.cuda.is_available():
    sys.exit(f"gpu_check: torch {torch.__version__} sees no CUDA device")
name = torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"
print(f"gpu_check: torch {torch.__version__} on {name}")
EOF

if ! "$PYTHON" -c "import ddpglab, gymnasium, pydantic" 2>/dev/null; then
    if [[ -n "${WHEELS:-}" ]]; then
        "$PYTHON" -m pip install -q --no-index --find-links "$WHEELS" -e . \
            || { echo "gpu_check: the wheels in $WHEELS do not cover ddpglab's dependencies" >&2; exit 2; }
    else
        # pip keeps the installed torch: the project asks for torch==2.13.0 only in its
        # metadata, so --no-deps for torch's sake, then the rest by name.
        "$PYTHON" -m pip install -q --no-deps -e . \
            && "$PYTHON" -m pip install -q "gymnasium>=1.0,<2" "pydantic>=2.6,<3" pyyaml rich \
                matplotlib pandas scipy pytest \
            || { echo "gpu_check: cannot install ddpglab's dependencies (offline? set WHEELS=DIR)" >&2; exit 2; }
    fi
fi

echo "== GPU tests (tests/test_device.py)"
"$PYTHON" -m pytest -q -p no:cacheprovider tests/test_device.py tests/test_replay_contract.py \
    -k "device or gpu" -rs

echo "== member-steps/s, fp32 and bf16 alternating, against the GEMM floor"
"$PYTHON" benchmarks/floor.py --device "$DEVICE" --members "$MEMBERS" \
    --precision fp32,bf16 --rounds 2 --steps "$STEPS" --updates "$UPDATES" \
    --gemm-size "${GEMM_SIZE:-8192}"
