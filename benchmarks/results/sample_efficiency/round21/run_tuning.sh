#!/bin/bash
# Round 21 (#33): R4 (plan 40 generations ending at 4 degrees, replan 80 past them) at 75 and 20 generations on the 36
# tuning units, into copies of round 17's folders. Starts when rounds 17 to 20 end.
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round21
while pgrep -f "round1[789]/run_tuning.sh|round20/run_held_out.sh" > /dev/null; do sleep 20; done
P="metric-cma:angle_end=4:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"
for g in 75 20; do
  [ -d $R/tuning_g$g ] || cp -r $S/round17/tuning_g$g $R/tuning_g$g
  nice -n 19 .venv/bin/python $S/round16/sweep_runner.py tuning 0 36 2 recorded,poisson $g $R/tuning_g$g \
    "$P:decay_generations=37:replans=[77]" > $R/tuning_g${g}_r4.log 2>&1
done
