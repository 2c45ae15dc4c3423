#!/bin/bash
# Round 26 (#33): W25 and W0 on foreign panel A and on the 36 tuning units. Starts when round 25's runs end.
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round26
while pgrep -f "round25/run_foreign.sh" > /dev/null; do sleep 20; done
RUN="nice -n 19 .venv/bin/python $S/round16/sweep_runner.py"
P="metric-cma:angle_end=4:mirrored=true:refresh_every=5:starts=2:trial_generations=3"
[ -d $R/foreign_g40 ] || cp -r $S/round25/foreign_g40 $R/foreign_g40
[ -d $R/tuning_g40 ] || cp -r $S/round18/tuning_g40 $R/tuning_g40
for W in "window=0.25:" ""; do
  $RUN foreign 0 36 2 recorded,poisson,negbin:2 40 $R/foreign_g40 "$P:${W}decay_generations=37" \
    > $R/foreign_g40_${W%%:*}.log 2>&1
  $RUN tuning 0 36 2 recorded,poisson 40 $R/tuning_g40 "$P:${W}decay_generations=37" \
    > $R/tuning_g40_${W%%:*}.log 2>&1
done
