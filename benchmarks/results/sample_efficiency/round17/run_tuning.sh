#!/bin/bash
# Round 17 (#33): the schedule of a session without max_generations, at 75, 20 and 40 generations, on the 36 tuning
# units of rounds 15-16 (`tuning 0 36`), 2 seeds, recorded and poisson; then the negbin:2 neuron at 40 generations.
# Runs in blocks of 12 units so that a block is complete for every setting if the deadline stops it.
# Round 16's runner (../round16/sweep_runner.py) with no references: round 14's labels and run keys.
cd /work/main
S=benchmarks/results/sample_efficiency
R=$S/round17
RUN="nice -n 19 .venv/bin/python $S/round16/sweep_runner.py"
P="mirrored=true:refresh_every=5:starts=2:trial_generations=3:window=0.125"
C0="metric-cma:angle_end=2:$P"                        # sessions without max_generations now (75-generation schedule)
B="metric-cma:angle_end=2:$P:decay_generations=37"    # planned as a 40-generation session, flat at 2 degrees after
D="metric-cma:angle_end=4:$P:decay_generations=37"    # the same, 4 degrees (round 15's floor): described only
for block in 0 1 2; do
  $RUN tuning $((12 * block)) 12 2 recorded,poisson 75 $R/tuning_g75 "cholesky-cma,$C0,$B" > $R/tuning_g75_block$block.log 2>&1
done
for block in 0 1 2; do
  $RUN tuning $((12 * block)) 12 2 recorded,poisson 20 $R/tuning_g20 "cholesky-cma,$C0,$B" > $R/tuning_g20_block$block.log 2>&1
done
# 40 generations: round 16's folder (cholesky-cma, C1 = B, ...) plus C0, so B and C0 share one baseline
[ -d $R/tuning_g40 ] || cp -r $S/round16/tuning_g40 $R/tuning_g40
$RUN tuning 0 36 2 recorded,poisson 40 $R/tuning_g40 "$C0" > $R/tuning_g40_c0.log 2>&1
$RUN tuning 0 36 2 negbin:2 40 $R/tuning_g40 "cholesky-cma,$B" > $R/tuning_g40_negbin2.log 2>&1
for block in 0 1 2; do
  $RUN tuning $((12 * block)) 12 2 recorded,poisson 75 $R/tuning_g75 "$D" > $R/tuning_g75_floor4_block$block.log 2>&1
done
