#!/bin/bash
# Round 47 (#33): a narrower searched subspace at a lab's budget (dimensions 25, K25; then 20, K20) against the
# sessions' default (35 directions, remeasure 2: R2), on round 46's diagnosis panels (its folders, copied, with their
# cholesky-cma, C0, R2, R4 and S1 runs), then the last 19 held-out units (read once, by round 45, for R2).
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round47
RUN="nice -n 19 .venv/bin/python $S/round16/sweep_runner.py"
BASE="metric-cma:angle_end=2"
TAIL="mirrored=true:refresh_every=5:remeasure=2:starts=2:trial_generations=3:window=0.125"
K25="$BASE:dimensions=25:$TAIL"
K20="$BASE:dimensions=20:$TAIL"
if [ "$1" = diagnosis ]; then
  [ -d $R/tuning_g40 ] || cp -r $S/round46/tuning_g40 $R/tuning_g40
  [ -d $R/foreign_g40 ] || cp -r $S/round46/foreign_g40 $R/foreign_g40
  for K in "$K25" "$K20"; do
    $RUN tuning 0 36 2 recorded,poisson 40 $R/tuning_g40 "$K" >> $R/tuning_g40.log 2>&1
    $RUN foreign 0 36 4 recorded,poisson,negbin:2 40 $R/foreign_g40 "$K" >> $R/foreign_g40.log 2>&1
  done
elif [ "$1" = held-out ]; then
  [ -d $R/held_out_g40 ] || cp -r $S/round45/held_out_g40 $R/held_out_g40
  $RUN held-out 378 19 4 recorded,poisson,negbin:2 40 $R/held_out_g40 "$2" > $R/held_out_g40.log 2>&1
fi
if [ "$1" = long ]; then  # the addendum: 3,000 evaluations on round 43's tenth held-out panel, in blocks of 6 units
  [ -d $R/held_out_tenth_g75 ] || cp -r $S/round43/held_out_tenth_g75 $R/held_out_tenth_g75
  for block in 0 1 2 3 4 5; do
    $RUN held-out $((306 + 6 * block)) 6 2 recorded,poisson,negbin:2 75 $R/held_out_tenth_g75 "$2" \
      > $R/held_out_tenth_g75_block$block.log 2>&1
  done
fi
