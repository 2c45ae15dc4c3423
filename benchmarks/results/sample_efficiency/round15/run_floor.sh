#!/bin/bash
# Round 15 (#33), second remedy: a higher floor of the annealed step (angle_end 4 instead of 2) on C1, on the
# 36 tuning units of tuning_g40/ (cholesky-cma and C1 already there).
cd /work/main
R=benchmarks/results/sample_efficiency/round15
P="mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125:decay_generations=37"
nice -n 19 .venv/bin/python benchmarks/results/sample_efficiency/round14/sweep_runner.py tuning 0 36 2 recorded,poisson 40 \
  $R/tuning_g40 "cholesky-cma,metric-cma:angle_end=2:$P,metric-cma:angle_end=4:$P" > $R/tuning_g40_floor.log 2>&1
# Then angle_end=3 (4 had fewer misses and a higher value but reached the target a generation later), same units.
nice -n 19 .venv/bin/python benchmarks/results/sample_efficiency/round14/sweep_runner.py tuning 0 36 2 recorded,poisson 40 \
  $R/tuning_g40 "cholesky-cma,metric-cma:angle_end=2:$P,metric-cma:angle_end=3:$P" > $R/tuning_g40_floor3.log 2>&1
