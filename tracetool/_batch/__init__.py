"""Many runs at once: the metrics of each run folder, computed in parallel (``migtrace batch``)."""
