"""Training (two stages, paper §3.5), decoding (beam / greedy) and checkpoints."""
