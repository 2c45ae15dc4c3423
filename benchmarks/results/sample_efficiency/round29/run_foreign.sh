#!/bin/bash
# Round 29 (#33): foreign panel A at 75 generations, in blocks of 6 units. Usage: run_foreign.sh FIRST_BLOCK LAST_BLOCK
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round29
P="mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"
P4="metric-cma:angle_end=4:$P:decay_generations=72"
C0="metric-cma:angle_end=2:$P"
for block in $(seq $1 $2); do
  nice -n 19 .venv/bin/python $S/round16/sweep_runner.py foreign $((6 * block)) 6 2 recorded,poisson,negbin:2 75 \
    $R/foreign_g75 "cholesky-cma,$P4,$C0" > $R/foreign_g75_block$block.log 2>&1
done
