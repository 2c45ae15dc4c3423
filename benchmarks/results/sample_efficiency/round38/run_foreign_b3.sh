#!/bin/bash
# Round 38 (#33): B3 alone on foreign panel A (4 seeds). B6 failed the rule on the tuning units (its ratio 0.60 is
# above C0's 0.47 + 0.025), so its foreign runs were stopped before any finished and not made.
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round38
RUN="nice -n 19 .venv/bin/python $S/round16/sweep_runner.py"
B3="metric-cma:angle_end=2:mirrored=true:momentum=0.3:refresh_every=5:starts=2:trial_generations=3:window=0.125"
$RUN foreign 0 36 4 recorded,poisson,negbin:2 40 $R/foreign_g40 "$B3" > $R/foreign_g40_b3.log 2>&1
