"""SparseMat's small exception hierarchy.

Every message is written for an artist or a pipeline TD: it names the file, the frame, the
channel or the knob involved and says what to do next. Front ends (CLI, Nuke, Natron, UI)
catch :class:`SparseMatError` and show ``str(error)``; anything else is a bug.
"""

from __future__ import annotations


class SparseMatError(Exception):
    """Base class of every error SparseMat raises on purpose.

    Attributes:
        retryable: True when running the same request again may succeed (e.g. a file still
            being written by another job), False when the input or settings must change.
    """

    retryable: bool = False


class SettingsError(SparseMatError, ValueError):
    """A knob has a value outside its allowed range or set of choices."""

    def __init__(self, knob: str, value: object, allowed: str) -> None:
        self.knob = knob
        self.value = value
        self.allowed = allowed
        super().__init__(f"Knob '{knob}' cannot be {value!r}: {allowed}.")


class InputError(SparseMatError):
    """An input plate or matte cannot be used (missing, unreadable, wrong channels)."""


class MissingFrameError(InputError):
    """A frame of a sequence does not exist on disk."""


class OutputError(SparseMatError):
    """An output cannot be written (folder not writable, disk full)."""


class ModelError(SparseMatError):
    """A model or checkpoint cannot be found, loaded or converted."""


class DeviceError(SparseMatError):
    """The requested compute device or backend is not available on this machine."""


class BudgetWarning(UserWarning):
    """A frame exceeded the active-pixel budget and was processed in a degraded way."""


class InputWarning(UserWarning):
    """Suspicious but usable input (NaN/Inf pixels, values out of range, size change)."""
