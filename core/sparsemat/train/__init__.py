"""Training data and training loop pieces: the seeded synthetic matting generator lives in :mod:`.synth`."""

from sparsemat.train.synth import (
    PRIOR_KINDS,
    Sample,
    Subject,
    degrade_prior,
    load_photos,
    lowres_prior,
    make_background,
    make_sample,
    make_sequence,
    make_subject,
    render_subject,
    training_batch,
)

__all__ = [
    "PRIOR_KINDS",
    "Sample",
    "Subject",
    "degrade_prior",
    "load_photos",
    "lowres_prior",
    "make_background",
    "make_sample",
    "make_sequence",
    "make_subject",
    "render_subject",
    "training_batch",
]
