"""improv's errors: one base, :class:`ImprovError`, for every error a user can cause.

The ``improv`` command catches :class:`ImprovError` alone and prints its message on one
line (status 1); any other exception is a bug and shows its traceback. Each error also
derives from the built-in exception it has always been (as python-rtmidi's
``InvalidPortError(RtMidiError, ValueError)``), so ``except ValueError`` and
``except FileNotFoundError`` in callers keep working:

=====================  ============================  =====================================
error                  also a                        raised for
=====================  ============================  =====================================
``InvalidValueError``  ``ValueError``                a flag or setting out of range or type
``MissingFileError``   ``FileNotFoundError``         a file or folder named that is absent
``ConfigError``        ``ValueError``                a config file (improv.config)
``PortError``          ``OSError``                   MIDI ports and back-ends (improv.ports)
``PortGoneError``      ``PortError``                 a port gone as improv (re)opened it
``ModelError``         ``ValueError``                model folders (improv.weights)
``SynthError``         ``RuntimeError``              FluidSynth (improv.synth)
``SoundfontError``     ``FileNotFoundError``         soundfonts (improv.soundfont)
``MidiReadError``      ``ValueError``                MIDI files (improv.midifile)
``DataError``          ``ValueError``                training data (improv.corpus)
``DownloadError``      ``ValueError``                data downloads (improv.data)
``MemoryFileError``    ``ValueError``                phrase memory files (improv.memory)
``RecordingError``     ``OSError``                   a recording that cannot be written
``FileLockError``      ``OSError``                   a file another improv works on
``WriteError``         ``OSError``                   a file that could not be written
=====================  ============================  =====================================

The classes live beside the code that raises them; this module holds the base and the
two generic ones.
"""

from __future__ import annotations


class ImprovError(Exception):
    """Base of every error improv reports as one line (not a bug)."""


class InvalidValueError(ImprovError, ValueError):
    """A flag, setting or argument is of the wrong type or out of its range."""


class MissingFileError(ImprovError, FileNotFoundError):
    """A file or folder that was named does not exist."""
