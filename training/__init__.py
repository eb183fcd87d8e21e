"""Everything TensorFlow for improv: data, models, losses, training,
evaluation, export and plots."""

from improv.logs import install as _install_logging

_install_logging("training")
