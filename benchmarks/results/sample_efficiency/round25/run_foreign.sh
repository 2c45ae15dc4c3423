#!/bin/bash
# Round 25 (#33): the first foreign panel (PNet and the detection heads: units of a network and a kind no round has
# tuned on), 36 units x 2 seeds x recorded, poisson and negbin:2, 40 generations: cholesky-cma, D (a session planned
# to 40 generations) and C0 (a session that does not say its length). Figures only.
# Usage: run_foreign.sh FIRST_BLOCK LAST_BLOCK (blocks of 6 units)
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round25
P="mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"
D="metric-cma:angle_end=4:$P:decay_generations=37"
C0="metric-cma:angle_end=2:$P"
for block in $(seq $1 $2); do
  nice -n 19 .venv/bin/python $S/round16/sweep_runner.py foreign $((6 * block)) 6 2 recorded,poisson,negbin:2 40 \
    $R/foreign_g40 "cholesky-cma,$D,$C0" > $R/foreign_g40_block$block.log 2>&1
done
