"""Copy a sweep folder without one optimizer's runs (its rows in runs/ and generations/), so that the sweep runs it
again with the code as it is now (a run whose key is in the folder is skipped).

    python without.py SOURCE DESTINATION LABEL
"""

import shutil
import sys
from pathlib import Path

import pandas as pd

source, destination, label = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
shutil.copytree(source, destination)
dropped = 0
for runs_file in sorted((destination / "runs").glob("*.parquet")):
    runs = pd.read_parquet(runs_file)
    gone = set(runs.loc[runs["optimizer"] == label, "key"])
    if not gone:
        continue
    dropped += len(gone)
    generations_file = destination / "generations" / runs_file.name
    kept = runs[~runs["key"].isin(gone)]
    if kept.empty:
        runs_file.unlink()
        generations_file.unlink(missing_ok=True)
        continue
    kept.to_parquet(runs_file, index=False)
    if generations_file.exists():
        generations = pd.read_parquet(generations_file)
        generations[~generations["key"].isin(gone)].to_parquet(generations_file, index=False)
print(f"{destination}: {dropped} runs of {label} left out")
