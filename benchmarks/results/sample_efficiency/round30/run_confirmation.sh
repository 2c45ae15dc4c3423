#!/bin/bash
# Round 30 (#33): cholesky-cma, D and C0 on foreign panel B and the seventh held-out panel, in blocks of 6 units.
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round30
P="mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"
D="metric-cma:angle_end=4:$P:decay_generations=37"
C0="metric-cma:angle_end=2:$P"
for block in 0 1 2 3 4 5; do
  nice -n 19 .venv/bin/python $S/round16/sweep_runner.py foreign $((36 + 6 * block)) 6 2 recorded,poisson,negbin:2 40 \
    $R/foreign_b_g40 "cholesky-cma,$D,$C0" > $R/foreign_b_g40_block$block.log 2>&1
  nice -n 19 .venv/bin/python $S/round16/sweep_runner.py held-out $((198 + 6 * block)) 6 2 recorded,poisson,negbin:2 40 \
    $R/held_out_seventh_g40 "cholesky-cma,$D,$C0" > $R/held_out_seventh_g40_block$block.log 2>&1
done
