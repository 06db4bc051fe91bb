"""DeepScreen's analysis pipeline: decode, find faces, classify, aggregate, explain.

Importing `ml` (or `ml.contracts`, `ml.media`) does not import torch: the API relies on that.
Heavy parts live in `ml.pipeline`, `ml.model` and below.
"""
