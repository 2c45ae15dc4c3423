#!/bin/bash
# Round 14 tuning runs (18 responsive tuning units x 2 seeds, bf16, 2 Ray workers); see docs/sample_efficiency.md.
cd /work/main
R=benchmarks/results/sample_efficiency/round14
S="metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"
run() { .venv/bin/python $R/sweep_runner.py tuning 0 18 2 recorded,poisson $1 $2 "$3" > $2.log 2>&1; }
run 40 $R/tuning_g40 "cholesky-cma,$S,$S:decay_generations=37,metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=3:trial_generations=3:window=0.125:decay_generations=34"
run 20 $R/tuning_g20 "cholesky-cma,$S,$S:decay_generations=17"
