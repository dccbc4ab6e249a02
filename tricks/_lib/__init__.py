"""Helpers the built-in tricks share (layers, network families, penalties, schedules). Not a
trick module: the registry skips names that start with '_'."""
