#!/bin/bash
# Round 38 (#33): B3 and B6 (C0 + momentum 0.3 / 0.6) on foreign panel A (4 seeds) and the tuning units, beside C0.
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round38
RUN="nice -n 19 .venv/bin/python $S/round16/sweep_runner.py"
B3="metric-cma:angle_end=2:mirrored=true:momentum=0.3:refresh_every=5:starts=2:trial_generations=3:window=0.125"
B6="metric-cma:angle_end=2:mirrored=true:momentum=0.6:refresh_every=5:starts=2:trial_generations=3:window=0.125"
[ -d $R/foreign_g40 ] || cp -r $S/round36/foreign_g40 $R/foreign_g40
[ -d $R/tuning_g40 ] || cp -r $S/round36/tuning_g40 $R/tuning_g40
$RUN tuning 0 36 2 recorded,poisson 40 $R/tuning_g40 "$B3,$B6" > $R/tuning_g40_b.log 2>&1
$RUN foreign 0 36 4 recorded,poisson,negbin:2 40 $R/foreign_g40 "$B3,$B6" > $R/foreign_g40_b.log 2>&1
