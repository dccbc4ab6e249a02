"""`python -m bench.cli ...`: the `ganbench` command without the installed script (e.g. from a
source checkout or a snapshot of one)."""
import sys

from bench.cli import main

sys.exit(main())
