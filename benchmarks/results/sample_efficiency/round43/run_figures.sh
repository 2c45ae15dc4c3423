#!/bin/bash
# Round 43 (#33, figures only): the sessions' new search (C0 + remeasure 2, round 42) on the tenth held-out MTCNN
# panel at 3,000 evaluations, beside round 41's cholesky-cma and C0 runs there, in blocks of 6 units.
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round43
R2="metric-cma:angle_end=2:mirrored=true:refresh_every=5:remeasure=2:starts=2:trial_generations=3:window=0.125"
[ -d $R/held_out_tenth_g75 ] || cp -r $S/round41/held_out_tenth_g75 $R/held_out_tenth_g75
for block in 0 1 2 3 4 5; do
  nice -n 19 .venv/bin/python $S/round16/sweep_runner.py held-out $((306 + 6 * block)) 6 2 recorded,poisson,negbin:2 \
    75 $R/held_out_tenth_g75 "$R2" > $R/held_out_tenth_g75_block$block.log 2>&1
done
