"""Capture: one module per kind of evidence. Nothing here imports the ledger."""
