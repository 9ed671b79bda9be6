"""Fashion attributes lab: one pretrained backbone, one head per attribute (gender, masterCategory,
subCategory, baseColour, season, articleType) of a product photo."""
