"""The synthetic studio: rigs, motion, ground truth, simulated heatmaps, rendered frames."""
