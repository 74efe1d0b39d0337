"""Application code of the pay-per-call platform, imported by app.py."""
