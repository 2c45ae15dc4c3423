#!/bin/bash
# Round 24 (#33): C0 ending at 4 degrees at 20, 40 and 75 generations on the 36 tuning units. After round 23.
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round24
while pgrep -f "round23/run_held_out.sh" > /dev/null; do sleep 20; done
P="metric-cma:angle_end=4:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"
for pair in "20 round21" "40 round18" "75 round21"; do
  set -- $pair
  [ -d $R/tuning_g$1 ] || cp -r $S/$2/tuning_g$1 $R/tuning_g$1
  nice -n 19 .venv/bin/python $S/round16/sweep_runner.py tuning 0 36 2 recorded,poisson $1 $R/tuning_g$1 "$P" \
    > $R/tuning_g$1_c04.log 2>&1
done
