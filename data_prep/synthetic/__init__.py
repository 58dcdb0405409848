"""Built-in synthetic micro-expression clips, so that training runs with no licensed data.

Faces are drawn procedurally with OpenCV. Every subject has its own face geometry, skin,
hair, background and lighting; every clip has a little variation of the neutral pose, a
slow head drift, brightness flicker and sensor noise, and one brief movement of at most
3 px (at 128 px) in one of the four classes of the TLCNN scheme:

- `positive`: lip corners pulled up and slightly outward;
- `negative`: brows lowered and drawn together, lip corners pulled down, or both;
- `surprise`: brows raised, eyes widened;
- `others`: a lip press or a partial blink.

`build_expression` draws still expression images for TLCNN's first stage the same way: other
faces, the movements at the full intensity of a macro-expression, labelled with the emotions
of the `expression9` scheme (`EXPRESSION_MOVEMENTS`), converted with the `expression`
converter.

`generate` writes the clips as folders of PNG frames with a manifest CSV (see its
docstring); `make_specs` and `render_clip` give the same clips in memory. Everything is a
function of the seed, whatever the order or the number of processes that render it.

Modules, each importing only those before it:

- `faces`: face geometry: `Face`, the 68 landmarks, the movement of each variant;
- `specs`: clip specs: which clips exist, their movement, timing and seeds;
- `rendering`: `render_clip`, a spec to frames and landmarks (supersampled drawing);
- `building`: frame folders and manifest, converted datasets, `ensure` building once.

This package re-exports their public names.
"""

from data_prep.synthetic.building import (MANIFEST_COLUMNS, build, build_expression,
                                          clip_options, ensure, ensure_expression, generate,
                                          generate_expressions)
from data_prep.synthetic.faces import Face, make_face
from data_prep.synthetic.rendering import render_clip
from data_prep.synthetic.specs import (AMPLITUDE_RANGE, APEX_FRACTION, CLASSES,
                                       DRIFT_MAX_DEGREES, DRIFT_RANGE, EXPRESSION_AMPLITUDE,
                                       EXPRESSION_MOVEMENTS, EXPRESSION_SEED,
                                       FLICKER_STD_RANGE, MOVEMENT_SECONDS, NEUTRAL_SECONDS,
                                       NOISE_SIGMA_RANGE, POSE_DEGREES, POSE_SHIFT,
                                       REFERENCE_SIZE, SHAPE_VARIATION, VARIANTS, ClipSpec,
                                       Movement, envelope, make_expression_specs, make_specs)

__all__ = [
    "AMPLITUDE_RANGE", "APEX_FRACTION", "CLASSES", "DRIFT_MAX_DEGREES", "DRIFT_RANGE",
    "EXPRESSION_AMPLITUDE", "EXPRESSION_MOVEMENTS", "EXPRESSION_SEED", "FLICKER_STD_RANGE",
    "MANIFEST_COLUMNS", "MOVEMENT_SECONDS", "NEUTRAL_SECONDS", "NOISE_SIGMA_RANGE",
    "POSE_DEGREES", "POSE_SHIFT", "REFERENCE_SIZE", "SHAPE_VARIATION", "VARIANTS", "ClipSpec",
    "Face", "Movement", "build", "build_expression", "clip_options", "ensure",
    "ensure_expression", "envelope", "generate", "generate_expressions", "make_expression_specs",
    "make_face", "make_specs", "render_clip",
]
