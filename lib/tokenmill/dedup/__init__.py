"""Duplicates and contamination: n-gram normalisation and hashing, benchmark decontamination."""
