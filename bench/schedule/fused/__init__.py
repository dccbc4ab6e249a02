"""Fused groups in the scheduler: which cells train as one vectorised step (`plan.py`), which
tricks and nets can (`support.py`, the table in docs/fused.md), and running a group and settling
its cells' records (`group.py`). The engine itself is bench/train/fused/."""
