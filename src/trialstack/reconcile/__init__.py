"""Reconciliation: cross-source checks (EDC against the central laboratory), each discrepancy raised as a query."""
