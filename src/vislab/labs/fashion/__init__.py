"""Fashion attributes lab: one pretrained backbone, one head per attribute (gender, masterCategory,
subCategory, baseColour, season, articleType) of a product photo."""
from vislab.core.registry import register_model_module

register_model_module("multitask", "vislab.labs.fashion.model")
