#!/bin/bash
# The 30-seed study's report: table (baseline uniform-cap1e4), contrasts against uniform at
# the same capacity, and the 2023 slides' three claims as name-part contrasts.
set -e
cd "$(dirname "$0")/../../.."  # the repository root
args=()
for cap in 1e4 1e6; do
  for v in softmax stratified-thr+0.5-good0.5 stratified-thr+0.5-good0.7 stratified-thr-0.5-good0.5 stratified-thr-0.5-good0.7; do
    name=${v/stratified-/stratified-cap$cap-}
    [ "$v" = softmax ] && name=softmax-cap$cap
    args+=(--contrast "$name:uniform-cap$cap")
  done
done
args+=(--contrast uniform-cap1e6:uniform-cap1e4 --contrast softmax-cap1e6:softmax-cap1e4)
strat6=$(for t in +0.5 -0.5; do for g in 0.5 0.7; do printf "stratified-cap1e6-thr$t-good$g,"; done; done)
strat4=$(for t in +0.5 -0.5; do for g in 0.5 0.7; do printf "stratified-cap1e4-thr$t-good$g,"; done; done)
args+=(--contrast "${strat6%,}:${strat4%,}")
args+=(--contrast cap1e6:cap1e4 --contrast thr-0.5:thr+0.5 --contrast good0.7:good0.5)
.venv/bin/ddpglab report runs/pendulum-2023-30seeds "${args[@]}" "$@"
