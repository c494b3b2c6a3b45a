"""Processes: the supervisor that runs the stages, and the inference/solver/API stage loops."""
