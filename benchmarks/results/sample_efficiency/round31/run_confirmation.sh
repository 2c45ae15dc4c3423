#!/bin/bash
# Round 31 (#33): cholesky-cma, C0 and the candidate (argument: its screen) on the eighth held-out MTCNN panel and
# foreign panel C, in blocks of 6 units (foreign C: its last 10 responsive units).
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round31
RUN="nice -n 19 .venv/bin/python $S/round16/sweep_runner.py"
C0="metric-cma:angle_end=2:mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"
N=$1
while pgrep -f "round31/run_diagnosis.sh" > /dev/null; do sleep 20; done
$RUN foreign 72 10 2 recorded,poisson,negbin:2 40 $R/foreign_c_g40 "cholesky-cma,$C0,$C0:screen=$N" \
  > $R/foreign_c_g40.log 2>&1
for block in 0 1 2 3 4 5; do
  $RUN held-out $((234 + 6 * block)) 6 2 recorded,poisson,negbin:2 40 $R/held_out_eighth_g40 \
    "cholesky-cma,$C0,$C0:screen=$N" > $R/held_out_eighth_g40_block$block.log 2>&1
done
