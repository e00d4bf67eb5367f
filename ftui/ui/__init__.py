"""Gradio layout and wiring: one module per tab, no logic of their own."""
