"""Committed SwinFusion weights (a data package, so that wheels include them)."""
