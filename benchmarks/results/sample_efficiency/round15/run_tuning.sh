#!/bin/bash
# Round 15 (#33): stall restarts (restart_after, restart_angle) on C1, on round 14's 10 tuning units (its runs of
# cholesky-cma and C1 copied into tuning_g40/, so only the new settings run).
cd /work/main
R=benchmarks/results/sample_efficiency/round15
C1="metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125:decay_generations=37"
nice -n 19 .venv/bin/python benchmarks/results/sample_efficiency/round14/sweep_runner.py tuning 0 10 2 recorded,poisson 40 \
  $R/tuning_g40 "cholesky-cma,$C1,$C1:restart_after=6,$C1:restart_after=6:restart_angle=20,$C1:restart_after=4:restart_angle=20,$C1:restart_after=8" \
  > $R/tuning_g40_restart.log 2>&1
# Then the next 26 responsive tuning units (36 in all) for cholesky-cma, C1 and the two restarts that did best on
# the first 10 (fewest misses: restart_after=8; highest value: restart_after=4, restart_angle=20), same folder.
nice -n 19 .venv/bin/python benchmarks/results/sample_efficiency/round14/sweep_runner.py tuning 10 26 2 recorded,poisson 40 \
  $R/tuning_g40 "cholesky-cma,$C1,$C1:restart_after=8,$C1:restart_after=4:restart_angle=20" > $R/tuning_g40_more.log 2>&1
