"""Committed dataset manifests and splits (a data package, so that wheels include them)."""
