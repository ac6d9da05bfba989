"""Scaling laws, the token-budget planner and the mixture builder."""
