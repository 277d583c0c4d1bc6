"""_analyses/bql."""
