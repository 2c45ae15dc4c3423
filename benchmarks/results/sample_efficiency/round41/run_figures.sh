#!/bin/bash
# Round 41 (#33): cholesky-cma and C0 on the tenth held-out MTCNN panel at 3,000 evaluations, in blocks of 6 units.
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round41
C0="metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"
for block in 0 1 2 3 4 5; do
  nice -n 19 .venv/bin/python $S/round16/sweep_runner.py held-out $((306 + 6 * block)) 6 2 recorded,poisson,negbin:2 \
    75 $R/held_out_tenth_g75 "cholesky-cma,$C0" > $R/held_out_tenth_g75_block$block.log 2>&1
done
