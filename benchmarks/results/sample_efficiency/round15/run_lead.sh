#!/bin/bash
# Round 15 (#33): C1 with refresh_lead=2 (what sessions run since #34) on round 14's tuning runs (copied here:
# cholesky-cma, C0, C1 and starts=3 already present, so only the new setting runs).
cd /work/main
R=benchmarks/results/sample_efficiency/round15
S="metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"
nice -n 19 .venv/bin/python benchmarks/results/sample_efficiency/round14/sweep_runner.py tuning 0 10 2 recorded,poisson 40 \
  $R/tuning_g40 "cholesky-cma,$S:decay_generations=37,$S:decay_generations=37:refresh_lead=2" > $R/tuning_g40_lead.log 2>&1
# Then the same on the next 26 responsive tuning units (after run_tuning.sh had run cholesky-cma and C1 there).
nice -n 19 .venv/bin/python benchmarks/results/sample_efficiency/round14/sweep_runner.py tuning 10 26 2 recorded,poisson 40 \
  $R/tuning_g40 "cholesky-cma,$S:decay_generations=37,$S:decay_generations=37:refresh_lead=2" > $R/tuning_g40_lead_more.log 2>&1
