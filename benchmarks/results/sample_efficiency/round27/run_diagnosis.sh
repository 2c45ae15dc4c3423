#!/bin/bash
# Round 27 (#33): K50 and K70 on foreign panel A and on the 36 tuning units. Starts when round 26's diagnosis ends.
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round27
while pgrep -f "round26/run_diagnosis.sh" > /dev/null; do sleep 20; done
RUN="nice -n 19 .venv/bin/python $S/round16/sweep_runner.py"
P="metric-cma:angle_end=4:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125:decay_generations=37"
[ -d $R/foreign_g40 ] || cp -r $S/round26/foreign_g40 $R/foreign_g40
[ -d $R/tuning_g40 ] || cp -r $S/round26/tuning_g40 $R/tuning_g40
for K in 50 70; do
  $RUN foreign 0 36 2 recorded,poisson,negbin:2 40 $R/foreign_g40 "$P:dimensions=$K" > $R/foreign_g40_k$K.log 2>&1
  $RUN tuning 0 36 2 recorded,poisson 40 $R/tuning_g40 "$P:dimensions=$K" > $R/tuning_g40_k$K.log 2>&1
done
