"""The speed machinery: caches, fast paths and worker processes that serve the core flow.

Each module here saves work and never changes a result: every zip is byte for byte the one
the core flow alone would write (docs/design.md, "Fast paths"). Nothing here imports the
pipeline or the command line.
"""
