"""Everything TensorFlow for improv: data, models, losses, training,
evaluation, export and plots."""
