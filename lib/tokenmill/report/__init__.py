"""Stage statistics and the run manifest."""
