#!/bin/bash
# Round 16 (#33), after the decision: cholesky-cma with drift correction (4 references), described, not a candidate:
# does the correction move the baseline too? Own folders (so that the decision's tables and normalization stay as
# they are), with the calibration of the folders they pair with (same units, no new calibration).
cd /work/main
R=benchmarks/results/sample_efficiency/round16
for pair in "tuning 0 tuning_g40" "held-out 126 held_out_fifth_g40"; do
  set -- $pair
  mkdir -p $R/$3_cholesky_drift && cp -n $R/$3/calibration.json $R/$3_cholesky_drift/
  nice -n 19 .venv/bin/python $R/sweep_runner.py $1 $2 36 2 recorded,poisson 40 $R/$3_cholesky_drift cholesky-cma 4 \
    > $R/$3_cholesky_drift.log 2>&1
done
