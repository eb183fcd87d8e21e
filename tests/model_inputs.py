"""Model inputs as training makes them, written out here on purpose rather than taken from
``improv.features``, so that a change of the runtime's scaling shows up as a failing test:
pitch / 128, step, duration (, velocity / 127); for a model with a pitch embedding the
integer pitch (and the interval class: clipped to ±24, shifted by 24, 49 for a first note)
as inputs of their own."""

import numpy as np


def keras_inputs(notes: np.ndarray, weights) -> np.ndarray | dict:
    """Return one sequence's inputs, batched (leading axis of 1), for the model ``weights``
    (an :class:`improv.weights.ModelWeights`) was exported from."""
    columns = [notes[:, 1], notes[:, 2]]
    if weights.velocity_bins:
        columns.append(notes[:, 3] / 127)
    if not weights.pitch_embedding:
        return np.stack([notes[:, 0] / 128] + columns, axis=1).astype(np.float32)[None]
    pitches = notes[:, 0].astype(np.int32)
    x = {"pitches": pitches[None],
         "notes": np.stack(columns, axis=1).astype(np.float32)[None]}
    if weights.interval_embedding:
        x["intervals"] = np.r_[49, np.clip(np.diff(pitches), -24, 24) + 24].astype(np.int32)[None]
    return x
