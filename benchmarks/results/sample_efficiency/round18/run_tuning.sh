#!/bin/bash
# Round 18 (#33): the mean shown more than once a generation (mean_repeats 2 and 4), C1 otherwise, on the 36 tuning
# units (`tuning 0 36`), 2 seeds, recorded and poisson, 40 generations, into a copy of round 17's tuning_g40/ (so
# that C1 and cholesky-cma are the same runs and every row has one baseline). Starts when round 17's runs end.
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round18
while pgrep -f round17/run_tuning.sh > /dev/null; do sleep 20; done
RUN="nice -n 19 .venv/bin/python $S/round16/sweep_runner.py"
P="metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125:decay_generations=37"
[ -d $R/tuning_g40 ] || cp -r $S/round17/tuning_g40 $R/tuning_g40
$RUN tuning 0 36 2 recorded,poisson 40 $R/tuning_g40 "$P:mean_repeats=2" > $R/tuning_g40_repeats2.log 2>&1
$RUN tuning 0 36 2 recorded,poisson 40 $R/tuning_g40 "$P:mean_repeats=4" > $R/tuning_g40_repeats4.log 2>&1
