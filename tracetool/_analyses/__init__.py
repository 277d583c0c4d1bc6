"""_analyses."""
