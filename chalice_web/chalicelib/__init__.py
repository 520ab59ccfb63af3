"""Modules of the Chalice project beside app.py (chalice packages this folder with it)."""
