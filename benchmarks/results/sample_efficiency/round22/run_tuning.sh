#!/bin/bash
# Round 22 (#33): a 75-generation planned session with the 4-degree end, on the 36 tuning units.
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round22
P="metric-cma:angle_end=4:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"
[ -d $R/tuning_g75 ] || cp -r $S/round21/tuning_g75 $R/tuning_g75
nice -n 19 .venv/bin/python $S/round16/sweep_runner.py tuning 0 36 2 recorded,poisson 75 $R/tuning_g75 \
  "$P:decay_generations=72" > $R/tuning_g75_planned4.log 2>&1
