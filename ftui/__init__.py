"""ftui: a browser dashboard for fine-tuning open LLMs on your own data."""

__version__ = "0.1.0"
