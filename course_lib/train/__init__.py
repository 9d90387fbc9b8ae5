"""Training (chapter 04): the one loop, the fit around it, recipes, checkpoints, the model cache, token-level scoring, latency."""
