"""The 68 facial landmarks: their count and the indices of the parts the toolkit uses.

iBUG 300-W order, as dlib's shape predictor (`data_prep.face.locate`), the built-in synthetic
faces and every record's `clip/landmarks` give them; coordinates are (x, y) pixels. Free of
TensorFlow: converter workers import it.
"""

NUM_LANDMARKS = 68
JAW = slice(0, 17)
BROWS = slice(17, 27)
NOSE_BRIDGE = slice(27, 31)
NOSE_WINGS = slice(31, 36)
LEFT_EYE = slice(36, 42)
"""The eye on the image's left (the subject's right eye)."""
RIGHT_EYE = slice(42, 48)
OUTER_LIPS = slice(48, 60)
INNER_LIPS = slice(60, 68)
MOUTH_CORNERS = (48, 54, 60, 64)
"""Outer and inner lip corners."""
