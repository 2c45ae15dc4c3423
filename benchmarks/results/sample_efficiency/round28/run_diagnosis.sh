#!/bin/bash
# Round 28 (#33): E8 on foreign panel A and on the 36 tuning units. Starts when round 27's diagnosis ends.
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round28
while pgrep -f "round27/run_diagnosis.sh" > /dev/null; do sleep 20; done
RUN="nice -n 19 .venv/bin/python $S/round16/sweep_runner.py"
E="metric-cma:angle_end=8:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125:decay_generations=37"
[ -d $R/foreign_g40 ] || cp -r $S/round27/foreign_g40 $R/foreign_g40
[ -d $R/tuning_g40 ] || cp -r $S/round27/tuning_g40 $R/tuning_g40
$RUN foreign 0 36 2 recorded,poisson,negbin:2 40 $R/foreign_g40 "$E" > $R/foreign_g40_e8.log 2>&1
$RUN tuning 0 36 2 recorded,poisson 40 $R/tuning_g40 "$E" > $R/tuning_g40_e8.log 2>&1
