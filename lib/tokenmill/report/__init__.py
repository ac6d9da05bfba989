"""Seeing what a run did: `explain` (where a document went) and `diff` (what changed between two runs),
read from written outputs only."""
