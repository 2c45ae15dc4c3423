#!/bin/bash
# Round 32 (#33): T1 and T2 on foreign panel A and on the 36 tuning units, into copies of round 31's folders.
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round32
RUN="nice -n 19 .venv/bin/python $S/round16/sweep_runner.py"
P="metric-cma:angle_end=2:mirrored=true:refresh_every=5"
[ -d $R/foreign_g40 ] || cp -r $S/round31/foreign_g40 $R/foreign_g40
[ -d $R/tuning_g40 ] || cp -r $S/round31/tuning_g40 $R/tuning_g40
for C in "starts=1:trial_generations=3" "starts=2:trial_generations=2"; do
  $RUN foreign 0 36 2 recorded,poisson,negbin:2 40 $R/foreign_g40 "$P:$C:window=0.125" > $R/foreign_g40_${C%%:*}_${C##*=}.log 2>&1
  $RUN tuning 0 36 2 recorded,poisson 40 $R/tuning_g40 "$P:$C:window=0.125" > $R/tuning_g40_${C%%:*}_${C##*=}.log 2>&1
done
