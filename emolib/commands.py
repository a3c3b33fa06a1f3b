"""Sub-commands for evaluating models and predicting on images and videos.

``REGISTRY`` lists functions that add a sub-parser; ``cli.build_parser`` calls each.
"""

REGISTRY: list = []
