"""Measuring HTML main-text extraction against human-labelled main texts (the `extract_eval` job)."""
