#!/bin/bash
# Round 23 (#33): the sixth held-out panel at 75 generations, three neurons: cholesky-cma, C0, P4. Starts when round
# 22's run and any pytest run end. Usage: run_held_out.sh FIRST_BLOCK LAST_BLOCK
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round23
while pgrep -f "round22/run_tuning.sh|pytest" > /dev/null; do sleep 20; done
P="mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"
for block in $(seq $1 $2); do
  nice -n 19 .venv/bin/python $S/round16/sweep_runner.py held-out $((162 + 6 * block)) 6 2 recorded,poisson,negbin:2 75 \
    $R/held_out_sixth_g75 "cholesky-cma,metric-cma:angle_end=2:$P,metric-cma:angle_end=4:$P:decay_generations=72" \
    > $R/held_out_sixth_g75_block$block.log 2>&1
done
