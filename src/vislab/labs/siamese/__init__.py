"""Siamese lab: face verification and retrieval with contrastive and triplet losses."""
from vislab.core.registry import register_model_module

register_model_module("embedding", "vislab.labs.siamese.model")
