#!/bin/bash
# Round 45 (#33): more images shown again (remeasure 3 and 4) against the sessions' default (remeasure 2), on
# round 44's diagnosis panels (round 44's folders, copied, with their cholesky-cma, C0 and R2 runs), then the last
# 19 held-out units (never read) with the default, the diagnosis winner (if any) and cholesky-cma.
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round45
RUN="nice -n 19 .venv/bin/python $S/round16/sweep_runner.py"
BASE="metric-cma:angle_end=2:mirrored=true:refresh_every=5"
TAIL="starts=2:trial_generations=3:window=0.125"
R2="$BASE:remeasure=2:$TAIL"
R3="$BASE:remeasure=3:$TAIL"
R4="$BASE:remeasure=4:$TAIL"
if [ "$1" = diagnosis ]; then
  [ -d $R/tuning_g40 ] || cp -r $S/round44/tuning_g40 $R/tuning_g40
  [ -d $R/foreign_g40 ] || cp -r $S/round44/foreign_g40 $R/foreign_g40
  $RUN tuning 0 36 2 recorded,poisson 40 $R/tuning_g40 "$R4" > $R/tuning_g40.log 2>&1
  $RUN foreign 0 36 4 recorded,poisson,negbin:2 40 $R/foreign_g40 "$R4" > $R/foreign_g40.log 2>&1
elif [ "$1" = held-out ]; then
  # $2: the diagnosis winner's label, or nothing (then the default and cholesky-cma only)
  $RUN held-out 378 19 4 recorded,poisson,negbin:2 40 $R/held_out_g40 "cholesky-cma,$R2${2:+,$2}" > $R/held_out_g40.log 2>&1
fi
