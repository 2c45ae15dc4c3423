#!/bin/bash
# Round 39 (#33): T2 (C0 with 2-generation trials) on foreign panel A's seeds 2-3, beside round 32-33's runs.
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round39
RUN="nice -n 19 .venv/bin/python $S/round16/sweep_runner.py"
T2="metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2:trial_generations=2:window=0.125"
[ -d $R/foreign_g40 ] || cp -r $S/round36/foreign_g40 $R/foreign_g40
[ -d $R/tuning_g40 ] || cp -r $S/round36/tuning_g40 $R/tuning_g40
$RUN foreign 0 36 4 recorded,poisson,negbin:2 40 $R/foreign_g40 "$T2" > $R/foreign_g40_t2.log 2>&1
