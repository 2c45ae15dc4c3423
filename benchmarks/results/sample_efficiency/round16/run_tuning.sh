#!/bin/bash
# Round 16 (#33): C1 with drift correction (4 references), with the floor of round 15 (angle_end=4) first, then
# with C1's own floor (angle_end=2), on the 36 tuning units of tuning_g40/ (a copy of ../round15/tuning_g40/, whose
# cholesky-cma, C1 and angle_end=4 runs without correction are the comparison; the runner skips nothing here, as
# every run of this script is new: its labels end in +drift4).
cd /work/main
R=benchmarks/results/sample_efficiency/round16
P="mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125:decay_generations=37"
nice -n 19 .venv/bin/python $R/sweep_runner.py tuning 0 36 2 recorded,poisson 40 $R/tuning_g40 \
  "metric-cma:angle_end=4:$P" 4 > $R/tuning_g40_floor4_drift.log 2>&1
nice -n 19 .venv/bin/python $R/sweep_runner.py tuning 0 36 2 recorded,poisson 40 $R/tuning_g40 \
  "metric-cma:angle_end=2:$P" 4 > $R/tuning_g40_c1_drift.log 2>&1
