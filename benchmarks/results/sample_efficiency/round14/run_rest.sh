#!/bin/bash
# Round 14, after held_out_fourth_g40 (run_held_out.sh's first line): the machine was loaded by other work, so the
# 75-generation held-out run covers the fourth panel's first 9 units, and the 20-generation tuning run 6 units.
cd /work/main
R=benchmarks/results/sample_efficiency/round14
S="metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"
while kill -0 20266 2>/dev/null; do sleep 5; done
.venv/bin/python $R/sweep_runner.py held-out 108 9 2 recorded,poisson 75 $R/held_out_fourth_g75 "cholesky-cma,$S:decay_generations=72" > $R/held_out_fourth_g75.log 2>&1
.venv/bin/python $R/sweep_runner.py tuning 0 6 2 recorded,poisson 20 $R/tuning_g20 "cholesky-cma,$S,$S:decay_generations=17" > $R/tuning_g20.log 2>&1
# then, after the 20-generation table: the 40-generation schedule in a 20-generation run (a floor for short sessions?)
# .venv/bin/python $R/sweep_runner.py tuning 0 6 2 recorded,poisson 20 $R/tuning_g20 "cholesky-cma,$S,$S:decay_generations=17,$S:decay_generations=37"
