"""Webhooks: subscriptions per study (facts in the ledger, `integration` context) and their signed delivery.

- `events`, `commands`, `model`: the subscription facts and the pure decisions on them (URL, filter, blinding);
- `handlers`, `readmodel`: the use cases in a unit of work, and `rm_webhook_subscription`;
- `delivery`: the deliverer (operational state in `webhook_delivery` / `webhook_dead_letter`, not the ledger);
- `settings`: allowed hosts and the retry policy from the environment.

docs/decisions/0012-webhooks.md says why it is shaped this way.
"""
