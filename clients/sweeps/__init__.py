"""In-silico sweeps: the batched engine, unit panels, the unit pool, sample-efficiency statistics, Ray."""
