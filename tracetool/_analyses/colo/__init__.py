"""_analyses/colo: COLO checkpoints, the BQL inside them, and failover (see colo.py)."""
