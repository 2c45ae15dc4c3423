"""Round 15: round 14's table (table.py) on the units where every named optimizer ran every pairing of the folder.

python subset_table.py FOLDER LABEL [LABEL ...]   (cholesky-cma is always kept; values are then / the best any of the
kept runs reached on the unit)
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

folder, labels = Path(sys.argv[1]), {"cholesky-cma", *sys.argv[2:]}
runs = {path.stem: pd.read_parquet(path) for path in (folder / "runs").glob("*.parquet")}
every = pd.concat(runs.values())
every = every[every.optimizer.isin(labels)]
counts = every.groupby("unit").optimizer.agg(["nunique", "size"])
units = set(counts[(counts["nunique"] == len(labels)) & (counts["size"] == counts["size"].max())].index)
with tempfile.TemporaryDirectory() as tmp:
    for part in ("runs", "generations"):
        (Path(tmp) / part).mkdir()
    for stem, table in runs.items():
        kept = table[table.optimizer.isin(labels) & table.unit.isin(units)]
        if len(kept):
            kept.to_parquet(Path(tmp) / "runs" / f"{stem}.parquet")
            generations = pd.read_parquet(folder / "generations" / f"{stem}.parquet")
            generations[generations.key.isin(kept.key)].to_parquet(Path(tmp) / "generations" / f"{stem}.parquet")
    print(f"{len(units)} units where all of {len(labels)} optimizers ran: {', '.join(sorted(units))}")
    table_script = Path(__file__).resolve().parents[1] / "round14" / "table.py"
    subprocess.run([sys.executable, str(table_script), tmp], check=True)
