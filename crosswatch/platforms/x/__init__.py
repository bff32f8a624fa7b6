"""X: limits and counting, the sans-I/O steps and reconciler (``steps``), the sign-in flow (``signin``)."""
