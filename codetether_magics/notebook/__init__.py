"""Jupyter integration: the magics, the live view, image capture, replay and the notebook path."""
