"""Identity, access and Part 11: users, roles per study and site, blinding, sessions, tokens, e-signatures."""
