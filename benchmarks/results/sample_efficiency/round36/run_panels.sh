#!/bin/bash
# Round 36 (#33): M (C0 + trial_by_mean) on foreign panel A (4 seeds) and the tuning units, beside C0's runs.
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round36
RUN="nice -n 19 .venv/bin/python $S/round16/sweep_runner.py"
M="metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2:trial_by_mean=true:trial_generations=3:window=0.125"
[ -d $R/foreign_g40 ] || cp -r $S/round33/foreign_g40 $R/foreign_g40
[ -d $R/tuning_g40 ] || cp -r $S/round33/tuning_g40 $R/tuning_g40
$RUN foreign 0 36 4 recorded,poisson,negbin:2 40 $R/foreign_g40 "$M" > $R/foreign_g40_m.log 2>&1
$RUN tuning 0 36 2 recorded,poisson 40 $R/tuning_g40 "$M" > $R/tuning_g40_m.log 2>&1
