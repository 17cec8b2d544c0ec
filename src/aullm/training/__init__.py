"""Training: losses, the one-fold trainer and the evaluation protocols (LOSO, cross-domain)."""
