#!/bin/bash
# Round 14: the held-out run (fourth panel), after the rule in README.md was committed; then the rest of the tuning runs.
cd /work/main
R=benchmarks/results/sample_efficiency/round14
S="metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"
held() { .venv/bin/python $R/sweep_runner.py held-out 108 18 2 recorded,poisson $1 $2 "$3" > $2.log 2>&1; }
tune() { .venv/bin/python $R/sweep_runner.py tuning 0 $1 2 recorded,poisson $2 $3 "$4" > $3.log 2>&1; }
held 40 $R/held_out_fourth_g40 "cholesky-cma,$S,$S:decay_generations=37"
held 75 $R/held_out_fourth_g75 "cholesky-cma,$S:decay_generations=72"
tune 9 20 $R/tuning_g20 "cholesky-cma,$S,$S:decay_generations=17"
tune 18 40 $R/tuning_g40 "cholesky-cma,$S,$S:decay_generations=37,metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=3:trial_generations=3:window=0.125:decay_generations=34"
