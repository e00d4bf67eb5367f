"""Estimating memory, time and cost of a fine-tuning run before spending it."""
