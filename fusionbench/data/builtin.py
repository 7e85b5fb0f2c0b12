"""Imports every built-in dataset module so that they register."""
