#!/bin/bash
# Round 31 (#33): S2 and S4 on foreign panel A and on the 36 tuning units, into copies of round 28's folders.
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round31
RUN="nice -n 19 .venv/bin/python $S/round16/sweep_runner.py"
C0="metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"
[ -d $R/foreign_g40 ] || cp -r $S/round28/foreign_g40 $R/foreign_g40
[ -d $R/tuning_g40 ] || cp -r $S/round28/tuning_g40 $R/tuning_g40
for N in 2 4; do
  $RUN foreign 0 36 2 recorded,poisson,negbin:2 40 $R/foreign_g40 "$C0:screen=$N" > $R/foreign_g40_s$N.log 2>&1
  $RUN tuning 0 36 2 recorded,poisson 40 $R/tuning_g40 "$C0:screen=$N" > $R/tuning_g40_s$N.log 2>&1
done
