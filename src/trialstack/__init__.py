"""TrialStack: a clinical trial data platform on one append-only, hash-chained event ledger."""

__version__ = "0.1.0"
