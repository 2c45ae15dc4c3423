#!/bin/bash
# Round 14, after run_rest.sh: the fourth panel's next 9 units at 75 generations (the first 9 are skipped: resumed).
cd /work/main
R=benchmarks/results/sample_efficiency/round14
S="metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"
while kill -0 24490 2>/dev/null; do sleep 5; done
.venv/bin/python $R/sweep_runner.py held-out 108 18 2 recorded,poisson 75 $R/held_out_fourth_g75 "cholesky-cma,$S:decay_generations=72" > $R/held_out_fourth_g75_18.log 2>&1
