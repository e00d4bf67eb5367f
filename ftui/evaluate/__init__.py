"""Scoring and comparing models: task metrics, the three-way playground, batch evaluation."""
