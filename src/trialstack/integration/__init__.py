"""Integration adapters (DESIGN §4): what carries committed events out of the ledger — the NATS JetStream relay
(`nats_relay`) and signed webhooks (`webhooks`)."""
