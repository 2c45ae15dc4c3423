#!/bin/bash
# Round 16 (#33): the fifth held-out panel (held-out units after the first 126), in blocks of 6 units so that each
# block is complete for every setting: cholesky-cma and C1 without correction, then the candidate the tuning rule
# chose, C1 with 4 references and drift correction (C1+drift4); 2 seeds, recorded and poisson, 40 generations.
# Usage: run_held_out.sh FIRST_BLOCK LAST_BLOCK (block b: the 6 units after the first 126 + 6 b)
cd /work/main
R=benchmarks/results/sample_efficiency/round16
C1="metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125:decay_generations=37"
for block in $(seq $1 $2); do
  skip=$((126 + 6 * block))
  nice -n 19 .venv/bin/python $R/sweep_runner.py held-out $skip 6 2 recorded,poisson 40 $R/held_out_fifth_g40 \
    "cholesky-cma,$C1" > $R/held_out_fifth_g40_block${block}.log 2>&1
  nice -n 19 .venv/bin/python $R/sweep_runner.py held-out $skip 6 2 recorded,poisson 40 $R/held_out_fifth_g40 \
    "$C1" 4 > $R/held_out_fifth_g40_block${block}_drift.log 2>&1
done
