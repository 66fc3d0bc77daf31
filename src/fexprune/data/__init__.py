"""Data: image data sets in their layouts, preprocessing with a cache, splits, feature tables."""
