"""Siamese lab: face verification and retrieval with contrastive and triplet losses."""
