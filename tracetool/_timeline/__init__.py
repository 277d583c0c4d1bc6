"""_timeline."""
