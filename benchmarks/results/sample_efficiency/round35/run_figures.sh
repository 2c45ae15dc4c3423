#!/bin/bash
# Round 35 (#33): cholesky-cma and C0 on the 10 foreign units no round has read, 4 seeds.
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round35
C0="metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"
nice -n 19 .venv/bin/python $S/round16/sweep_runner.py foreign 72 10 4 recorded,poisson,negbin:2 \
  40 $R/foreign_c_g40 "cholesky-cma,$C0" > $R/foreign_c_g40.log 2>&1
