"""Reading, detecting, checking and previewing datasets."""
