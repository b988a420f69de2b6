"""Lambda semantics, one module per resource group. Knows nothing of HTTP or AWS error codes."""
