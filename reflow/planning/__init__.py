"""Planning layer: canonical encoding, Merkle identities, the planner. Pure, no I/O."""
