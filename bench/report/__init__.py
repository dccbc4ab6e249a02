"""Reports: paper-style tables, figures and an index from stored records, without torch.

Everything here reads records through `bench.store.results` only (`load_table`: one row per
grid membership, and what the grids asked for)."""
