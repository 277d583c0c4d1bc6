"""The rows of the metric table, one module per analysis; ``tracetool._check.metrics`` assembles
them, in order, into ``METRICS``."""
