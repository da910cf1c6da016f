"""The core flow: request -> selection -> layout -> entries -> packed files -> zip.

Nothing here imports the speed layer or the command line (docs/design.md, "Code map"). Every
module builds on the ones below it; a build that used only these would write the same bytes as
one with every cache and worker process, only more slowly.
"""
