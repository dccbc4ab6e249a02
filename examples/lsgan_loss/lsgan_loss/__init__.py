"""A third-party ganbench trick: the least-squares GAN loss. The trick lives in `trick.py`,
which ganbench imports through the `ganbench.tricks` entry point."""
