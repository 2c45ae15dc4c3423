#!/bin/bash
# Round 46 (#33): the images shown again ranked by a mean shrunk towards their generation's (shrink 1, S1) against the
# sessions' default (remeasure 2, plain means: R2), on round 45's diagnosis panels (its folders, copied, with their
# cholesky-cma, C0, R2 and R4 runs), then the last 19 held-out units (read once, by round 45, for R2).
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round46
RUN="nice -n 19 .venv/bin/python $S/round16/sweep_runner.py"
BASE="metric-cma:angle_end=2:mirrored=true:refresh_every=5"
TAIL="starts=2:trial_generations=3:window=0.125"
S1="$BASE:remeasure=2:shrink=1:$TAIL"
if [ "$1" = diagnosis ]; then
  [ -d $R/tuning_g40 ] || cp -r $S/round45/tuning_g40 $R/tuning_g40
  [ -d $R/foreign_g40 ] || cp -r $S/round45/foreign_g40 $R/foreign_g40
  $RUN tuning 0 36 2 recorded,poisson 40 $R/tuning_g40 "$S1" > $R/tuning_g40.log 2>&1
  $RUN foreign 0 36 4 recorded,poisson,negbin:2 40 $R/foreign_g40 "$S1" > $R/foreign_g40.log 2>&1
elif [ "$1" = held-out ]; then
  [ -d $R/held_out_g40 ] || cp -r $S/round45/held_out_g40 $R/held_out_g40
  $RUN held-out 378 19 4 recorded,poisson,negbin:2 40 $R/held_out_g40 "$S1" > $R/held_out_g40.log 2>&1
fi
