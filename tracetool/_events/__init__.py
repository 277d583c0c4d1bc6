"""_events."""
