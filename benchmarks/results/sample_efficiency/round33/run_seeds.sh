#!/bin/bash
# Round 33's check: cholesky-cma, C0 and T4 on seeds 2 and 3 of foreign panel A (seeds 0 and 1 are in the folder).
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round33
P="metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2"
nice -n 19 .venv/bin/python $S/round16/sweep_runner.py foreign 0 36 4 recorded,poisson,negbin:2 40 $R/foreign_g40 \
  "cholesky-cma,$P:trial_generations=3:window=0.125,$P:trial_generations=4:window=0.125" > $R/foreign_g40_seeds.log 2>&1
