"""Corpus readers: the AI Hub 71502 layout (folders or zip parts) and the related AI Hub corpora."""
