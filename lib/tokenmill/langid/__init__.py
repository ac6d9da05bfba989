"""Language identification (fastText, CLD2, lingua, or a cascade) and language filtering."""
