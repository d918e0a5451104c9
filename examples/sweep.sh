#!/usr/bin/env bash
# A shell-scripted sweep: learning rate x activation on the moons, one `nntrain train`
# per grid point, then one table of every run with `nntrain report`.
#
#   bash examples/sweep.sh                 # writes runs/sweep-moons/lr=..-act=../
#   OUT=/tmp/s EPOCHS=50 bash examples/sweep.sh
#
# Each run is an ordinary run folder, so the loop can be split across machines
# (or `xargs -P`) and the folders gathered anywhere before `nntrain report`.
set -euo pipefail

OUT=${OUT:-runs/sweep-moons}
EPOCHS=${EPOCHS:-500}
LRS=${LRS:-"0.05 0.2 1.0"}
ACTIVATIONS=${ACTIVATIONS:-"tanh relu sigmoid"}
CONFIG=${CONFIG:-$(dirname "$0")/../configs/moons.yaml}

for lr in $LRS; do
  for act in $ACTIVATIONS; do
    dir="$OUT/lr=$lr-act=$act"
    if grep -qsE '"status": "(completed|early_stopped|diverged)"' "$dir/summary.json"; then
      continue                            # finished by an earlier run of this script
    fi
    rm -rf "$dir"                         # an interrupted attempt: start it again
    nntrain train "$CONFIG" optimizer.lr="$lr" model.activation="$act" \
      train.epochs="$EPOCHS" --out "$dir" --quiet > /dev/null
  done
done

nntrain report "$OUT" --sort final_val_loss --csv "$OUT/report.csv"
