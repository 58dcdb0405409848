"""tfmer: TensorFlow/Keras toolkit for facial micro-expression recognition."""

import os

# TensorFlow's C++ start-up chatter hides the toolkit's own output; a user's setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
