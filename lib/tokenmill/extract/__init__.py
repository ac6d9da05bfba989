"""HTML -> text."""
