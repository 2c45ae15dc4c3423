#!/bin/bash
# Round 44 (#33): R2 (C0 + remeasure 2) as mended after round 42's review, on round 42's three panels, beside
# cholesky-cma and C0 as they ran there (round 42's folders without R2's runs: without.py).
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round44
RUN="nice -n 19 .venv/bin/python $S/round16/sweep_runner.py"
R2="metric-cma:angle_end=2:mirrored=true:refresh_every=5:remeasure=2:starts=2:trial_generations=3:window=0.125"
$RUN tuning 0 36 2 recorded,poisson 40 $R/tuning_g40 "$R2" > $R/tuning_g40.log 2>&1
$RUN foreign 0 36 4 recorded,poisson,negbin:2 40 $R/foreign_g40 "$R2" > $R/foreign_g40.log 2>&1
$RUN held-out 342 36 2 recorded,poisson,negbin:2 40 $R/held_out_g40 "$R2" > $R/held_out_g40.log 2>&1
