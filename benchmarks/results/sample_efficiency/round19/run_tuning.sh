#!/bin/bash
# Round 19 (#33): R (plan 40 generations, replan 80 past them) at 75 generations on round 17's 36 tuning units, into a
# copy of round 17's tuning_g75/. Starts when rounds 17 and 18 end.
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round19
while pgrep -f "round1[78]/run_tuning.sh" > /dev/null; do sleep 20; done
P="metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"
[ -d $R/tuning_g75 ] || cp -r $S/round17/tuning_g75 $R/tuning_g75
nice -n 19 .venv/bin/python $S/round16/sweep_runner.py tuning 0 36 2 recorded,poisson 75 $R/tuning_g75 \
  "$P:decay_generations=37:replans=[77]" > $R/tuning_g75_replan.log 2>&1
