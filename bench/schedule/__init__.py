"""Scheduling: a grid file becomes cells (`grid/`, with `bench.designs`), cells are selected
(`grid/select.py`), placed (`placement.py`), leased (`leases.py`) and run (`runner.py`) by the
process pool (`executor.py`) or Ray (`ray_executor.py`), cells equal but for seed as one fused
group (`fused/`); `run_output.py` prints their rows,
`dry_run.py` plans without running, `rescore.py` re-scores stored checkpoints,
`store_check/` checks and repairs a store (`ganbench check`)."""
