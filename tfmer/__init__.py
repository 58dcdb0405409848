"""tfmer: TensorFlow/Keras toolkit for facial micro-expression recognition."""

import os

# TensorFlow's C++ chatter hides the toolkit's own output; a user's setting wins. Level 3
# (fatal only): with op determinism (`protocol.deterministic`) tf.data's graph rewrite logs
# an error-level line per pipeline about an attribute its op definition lacks ("This may be
# expected ... Unknown attributes will be ignored"); real failures raise Python exceptions.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
