#!/bin/bash
# Round 26 (#33): the candidate that passed the diagnosis against cholesky-cma and D on foreign panel B and on the
# seventh held-out panel, in blocks of 6 units. Usage: run_confirmation.sh WINDOW_OPTION (e.g. "window=0.25:" or "")
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round26
while pgrep -f "round26/run_diagnosis.sh" > /dev/null; do sleep 20; done
P="metric-cma:angle_end=4:mirrored=true:refresh_every=5:starts=2:trial_generations=3"
D="$P:window=0.125:decay_generations=37"
CANDIDATE="$P:$1decay_generations=37"
for block in 0 1 2 3 4 5; do
  nice -n 19 .venv/bin/python $S/round16/sweep_runner.py foreign $((36 + 6 * block)) 6 2 recorded,poisson,negbin:2 40 \
    $R/foreign_b_g40 "cholesky-cma,$D,$CANDIDATE" > $R/foreign_b_g40_block$block.log 2>&1
done
for block in 0 1 2 3 4 5; do
  nice -n 19 .venv/bin/python $S/round16/sweep_runner.py held-out $((198 + 6 * block)) 6 2 recorded,poisson,negbin:2 40 \
    $R/held_out_seventh_g40 "cholesky-cma,$D,$CANDIDATE" > $R/held_out_seventh_g40_block$block.log 2>&1
done
