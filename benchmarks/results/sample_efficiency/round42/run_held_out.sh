#!/bin/bash
# Round 42 (#33): the candidate that passed the diagnosis ($1, its remeasure k), with cholesky-cma and C0, on the
# eleventh and last full held-out MTCNN panel (36 units x 2 seeds x three neurons, 1,600 evaluations).
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round42
RUN="nice -n 19 .venv/bin/python $S/round16/sweep_runner.py"
C0="metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"
RK="metric-cma:angle_end=2:mirrored=true:refresh_every=5:remeasure=$1:starts=2:trial_generations=3:window=0.125"
$RUN held-out 342 36 2 recorded,poisson,negbin:2 40 $R/held_out_g40 "cholesky-cma,$C0,$RK" > $R/held_out_g40.log 2>&1
