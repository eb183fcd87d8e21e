"""improv: a real-time MIDI improviser.

The runtime package. It never imports TensorFlow: models arrive as plain
NumPy weights exported by the ``training`` package.
"""

__version__ = "0.1.0"

from improv.logs import install as _install_logging

_install_logging("improv")
