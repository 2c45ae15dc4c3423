#!/bin/bash
# Round 20 (#33): the sixth held-out panel (held-out units after the first 162) in blocks of 6 units, 40 generations,
# recorded, poisson and negbin:2: cholesky-cma, C1, D (4-degree end) and C0. Starts when rounds 17 to 19 end.
# Usage: run_held_out.sh FIRST_BLOCK LAST_BLOCK
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round20
while pgrep -f "round1[789]/run_tuning.sh" > /dev/null; do sleep 20; done
P="mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"
C1="metric-cma:angle_end=2:$P:decay_generations=37"
D="metric-cma:angle_end=4:$P:decay_generations=37"
C0="metric-cma:angle_end=2:$P"
for block in $(seq $1 $2); do
  nice -n 19 .venv/bin/python $S/round16/sweep_runner.py held-out $((162 + 6 * block)) 6 2 recorded,poisson,negbin:2 40 \
    $R/held_out_sixth_g40 "cholesky-cma,$C1,$D,$C0" > $R/held_out_sixth_g40_block$block.log 2>&1
done
