"""Choose a ``tf.distribute`` strategy for training.

- ``auto``: MultiWorkerMirroredStrategy when ``TF_CONFIG`` names a cluster,
  MirroredStrategy when there are several GPUs, else the default strategy.
- ``mirrored``: MirroredStrategy over the local devices. ``cpu_replicas=N``
  splits the CPU into N logical devices, so the mirrored path runs (and is
  tested) on a machine without GPUs.
- ``multiworker``: MultiWorkerMirroredStrategy; every worker runs the same
  ``improv train`` command with its own ``TF_CONFIG``.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from improv.errors import InvalidValueError

STRATEGIES = ("auto", "none", "mirrored", "multiworker")


def _split_cpu(replicas: int) -> list[str]:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)])
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def get_strategy(name: str = "auto", cpu_replicas: int = 0) -> tf.distribute.Strategy:
    """Return the strategy called ``name`` (see the module docstring)."""
    if name not in STRATEGIES:
        raise InvalidValueError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    has_cluster = bool(json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster"))
    if name == "auto":
        if has_cluster:
            name = "multiworker"
        elif len(tf.config.list_physical_devices("GPU")) > 1 or cpu_replicas > 1:
            name = "mirrored"
        else:
            name = "none"
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "multiworker":
        if not has_cluster:
            raise InvalidValueError("strategy 'multiworker' needs TF_CONFIG with a 'cluster' "
                                    "and a 'task'")
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return tf.distribute.MirroredStrategy()
    devices = _split_cpu(cpu_replicas) if cpu_replicas > 1 else None
    return tf.distribute.MirroredStrategy(devices=devices)


def is_chief() -> bool:
    """Return whether this process should write checkpoints and exports."""
    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = tf_config.get("task") or {}
    return task.get("type", "chief") == "chief" or (
        task.get("type") == "worker" and task.get("index", 0) == 0
        and "chief" not in tf_config.get("cluster", {}))


def _per_example_losses(config) -> dict:
    from training.model import losses

    return losses(config, reduction=None)


def fit_multi_worker(model, strategy, train_ds, val_ds, config, initial_epoch: int,
                     callbacks: list) -> None:
    """Train like ``model.fit`` with a ``strategy.run`` loop.

    Keras 3's ``fit`` cannot take MultiWorkerMirroredStrategy's per-replica
    batches (keras-team/keras#20585), so this loop does the same steps itself:
    per-replica losses averaged over the global batch, gradients all-reduced
    by the optimizer, and the same callbacks (checkpoints, early stopping).
    """
    import keras

    losses = _per_example_losses(config)
    weights = config.loss_weights
    sum_ = tf.distribute.ReduceOp.SUM

    def head_losses(y, pred):
        out = {}
        for head, fn in losses.items():
            per_example = fn(y[head], pred[head])
            if len(per_example.shape) > 1:  # streaming: mean over positions
                axes = list(range(1, len(per_example.shape)))
                per_example = tf.reduce_mean(per_example, axis=axes)
            out[head] = tf.nn.compute_average_loss(per_example, global_batch_size=config.batch_size)
        out["loss"] = tf.add_n([weights[h] * out[h] for h in losses])
        return out

    def train_replica(x, y):
        with tf.GradientTape() as tape:
            out = head_losses(y, model(x, training=True))
        grads = tape.gradient(out["loss"], model.trainable_variables)
        model.optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return out

    @tf.function
    def train_step(x, y):
        out = strategy.run(train_replica, args=(x, y))
        return {k: strategy.reduce(sum_, v, axis=None) for k, v in out.items()}

    @tf.function
    def val_step(x, y):
        out = strategy.run(lambda a, b: head_losses(b, model(a, training=False)), args=(x, y))
        return {k: strategy.reduce(sum_, v, axis=None) for k, v in out.items()}

    def run(dataset, step, prefix=""):
        totals, n = {}, 0
        for batch, (x, y) in enumerate(strategy.experimental_distribute_dataset(dataset)):
            out = step(x, y)
            for k, v in out.items():
                totals[k] = totals.get(k, 0.0) + float(v)
            n += 1
            if not prefix:
                cb.on_train_batch_end(batch, {k: v / n for k, v in totals.items()})
                if model.stop_training:
                    break
        name = {"loss": "loss"}
        return {prefix + (name.get(k) or f"{k}_loss"): v / max(n, 1) for k, v in totals.items()}

    cb = keras.callbacks.CallbackList(callbacks, model=model)
    model.stop_training = False
    cb.on_train_begin()
    for epoch in range(initial_epoch, config.epochs):
        cb.on_epoch_begin(epoch)
        logs = run(train_ds, train_step)
        if val_ds is not None:
            logs.update(run(val_ds, val_step, prefix="val_"))
        cb.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    cb.on_train_end()
