#!/bin/bash
# Round 33 (#33): T4 and T5 on foreign panel A and on the 36 tuning units, into copies of round 32's folders.
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round33
while pgrep -f "round32/run_diagnosis.sh" > /dev/null; do sleep 20; done
RUN="nice -n 19 .venv/bin/python $S/round16/sweep_runner.py"
P="metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2"
[ -d $R/foreign_g40 ] || cp -r $S/round32/foreign_g40 $R/foreign_g40
[ -d $R/tuning_g40 ] || cp -r $S/round32/tuning_g40 $R/tuning_g40
for N in 4 5; do
  $RUN foreign 0 36 2 recorded,poisson,negbin:2 40 $R/foreign_g40 "$P:trial_generations=$N:window=0.125" \
    > $R/foreign_g40_t$N.log 2>&1
  $RUN tuning 0 36 2 recorded,poisson 40 $R/tuning_g40 "$P:trial_generations=$N:window=0.125" \
    > $R/tuning_g40_t$N.log 2>&1
done
