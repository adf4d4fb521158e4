"""gridflow.journal: the SQLModel schema and store of runs, orders, fills, events,
commands and sweeps (the bottom layer above data/ and config/)."""
