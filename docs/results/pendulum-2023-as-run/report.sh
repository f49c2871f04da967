#!/bin/bash
# The as-run study's report, beside the bounds-correct 30-seed study: its two variants at
# 1 N m (as-run/) and at 2 N m (correct/), what the torque limit cost each, and whether
# softmax's gap to uniform changes with it.
set -e
cd "$(dirname "$0")/../../.."  # the repository root
.venv/bin/ddpglab report runs/pendulum-2023-30seeds runs/pendulum-2023-as-run \
  --out runs/as-run-report --label correct --label as-run \
  --variants correct/uniform-cap1e6,correct/softmax-cap1e4,as-run/uniform-cap1e6,as-run/softmax-cap1e4 \
  --baseline correct/uniform-cap1e6 \
  --contrast as-run/uniform-cap1e6:correct/uniform-cap1e6 \
  --contrast as-run/softmax-cap1e4:correct/softmax-cap1e4 \
  --contrast as-run/softmax-cap1e4:as-run/uniform-cap1e6 \
  --contrast correct/softmax-cap1e4:correct/uniform-cap1e6 \
  --interaction as-run/softmax-cap1e4:as-run/uniform-cap1e6 \
  correct/softmax-cap1e4:correct/uniform-cap1e6 "$@"
for f in table.md contrasts.md curves.png curves_steps.png final.png inputs.txt; do
  cp runs/as-run-report/$f docs/results/pendulum-2023-as-run/
done
