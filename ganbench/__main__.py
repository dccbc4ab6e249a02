"""`python -m ganbench ...` is the `ganbench` command."""
import sys

from bench.cli import main

sys.exit(main())
