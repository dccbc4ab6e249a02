"""Reports: paper-style tables, figures and an index from stored records, without torch.

Everything here reads records through `bench.store.results.load_records` only."""
