"""IRT: randomization, kits and supply, dispensing, emergency unblinding (DESIGN.md §4)."""
