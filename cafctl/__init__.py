"""`cafctl`: the operator's command line (dead letters, reconciliation)."""
