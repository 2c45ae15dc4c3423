#!/bin/bash
# Round 42 (#33): R1 and R2 (C0 + remeasure 1 / 2) on the tuning units and foreign panel A (4 seeds), beside C0.
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round42
RUN="nice -n 19 .venv/bin/python $S/round16/sweep_runner.py"
R1="metric-cma:angle_end=2:mirrored=true:refresh_every=5:remeasure=1:starts=2:trial_generations=3:window=0.125"
R2="metric-cma:angle_end=2:mirrored=true:refresh_every=5:remeasure=2:starts=2:trial_generations=3:window=0.125"
[ -d $R/foreign_g40 ] || cp -r $S/round38/foreign_g40 $R/foreign_g40
[ -d $R/tuning_g40 ] || cp -r $S/round38/tuning_g40 $R/tuning_g40
$RUN tuning 0 36 2 recorded,poisson 40 $R/tuning_g40 "$R1,$R2" > $R/tuning_g40_r.log 2>&1
$RUN foreign 0 36 4 recorded,poisson,negbin:2 40 $R/foreign_g40 "$R1,$R2" > $R/foreign_g40_r.log 2>&1
