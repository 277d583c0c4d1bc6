"""_analyses/downtime: the guest's pause end to end and its critical path."""
