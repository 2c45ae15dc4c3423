#!/bin/bash
# Round 48 (#33, figures only): fewer directions still (dimensions 15, K15) against the sessions' K20 (round 47), on
# round 47's diagnosis panels (its folders, copied, with their cholesky-cma, C0, R2, R4, S1, K25 and K20 runs).
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round48
RUN="nice -n 19 .venv/bin/python $S/round16/sweep_runner.py"
K15="metric-cma:angle_end=2:dimensions=15:mirrored=true:refresh_every=5:remeasure=2:starts=2:trial_generations=3:window=0.125"
[ -d $R/tuning_g40 ] || cp -r $S/round47/tuning_g40 $R/tuning_g40
[ -d $R/foreign_g40 ] || cp -r $S/round47/foreign_g40 $R/foreign_g40
$RUN foreign 0 36 4 recorded,poisson,negbin:2 40 $R/foreign_g40 "$K15" > $R/foreign_g40.log 2>&1
$RUN tuning 0 36 2 recorded,poisson 40 $R/tuning_g40 "$K15" > $R/tuning_g40.log 2>&1
