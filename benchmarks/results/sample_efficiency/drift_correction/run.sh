#!/bin/bash
# Drift correction as a session option (issue 33 item 2): tuning units, 40 generations, bf16, 2 Ray workers.
# Each folder: cholesky-cma and metric-cma as a 40-generation dcgan-faces session runs it, noise recorded and poisson.
# Run from a copy of the source tree ($TREE, default this checkout), so that edits made while it runs change nothing.
M=/work/main
TREE=${TREE:-$M}
R=$M/benchmarks/results/sample_efficiency/drift_correction
S="metric-cma:starts=2:decay_generations=37:refresh_every=5:window=0.125"
run() {  # OUT NOISE REFERENCE-FLAGS...
  local out=$1 noise=$2; shift 2
  mkdir -p $R/$out
  cp -n $M/benchmarks/results/sample_efficiency/round14/tuning_g40/calibration.json $R/$out/  # same units, bf16
  (cd $TREE && PYTHONPATH=$TREE $M/.venv/bin/python benchmarks/sample_efficiency.py --split tuning --units 18 \
    --seeds 2 --generations 40 --precision bf16 --workers 2 --basis $M/generators/metrics/dcgan-faces.metric.npz \
    --noise $noise --optimizers "cholesky-cma,$S" --out $R/$out "$@") > $R/$out.log 2>&1
}
run off recorded,poisson --references 4
run on_r4 recorded,poisson --references 4 --drift-correction
run on_r10 recorded --references 10 --drift-correction
# then, into the same folder (its recorded runs skipped; log in on_r10_poisson.log):
# run on_r10 recorded,poisson --references 10 --drift-correction
