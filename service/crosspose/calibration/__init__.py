"""Calibration formats in and out, validation."""
