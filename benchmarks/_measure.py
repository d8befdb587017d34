"""Timing helpers and the result protocol shared by the throughput benchmark's workers.

A worker runs in its own process and reports by printing one JSON object as
the last line of its stdout (``emit``); the driver reads that line.  The
figures are medians of repeated calls after a warm-up, so that one slow
call (a retrace, another process on the machine) does not decide them.
"""

import json
import os
import statistics
import time

import numpy as np
from _shapes import epochs_for, predict_repeats


def median(values):
    """The median as a float; NaN for no values."""
    return float(statistics.median(values)) if values else float("nan")


def timed(function):
    """Call ``function()``; return ``(seconds, its result)``."""
    start = time.perf_counter()
    out = function()
    return time.perf_counter() - start, out


def train_auc(y, proba):
    """ROC AUC of ``proba`` (any shape holding one score per row) against ``y``."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, np.asarray(proba).ravel()))


def emit(result):
    """Print the worker's result as the last line of stdout."""
    result.setdefault("loadavg_end", list(os.getloadavg()))
    print(json.dumps(result), flush=True)


def epoch_timer_callback(keras_module, times):
    """A Keras callback that appends each epoch's wall time to ``times``."""

    class EpochTimer(keras_module.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self._start)

    return EpochTimer()


def prediction_timings(predict, rows, args):
    """Time ``predict()`` over all ``rows`` after one warm-up call.

    Returns
    -------
    dict
        ``predict_s``, the timed calls' seconds, and ``predict_rows_per_s``,
        rows over their median.
    """
    times = [timed(predict)[0] for _ in range(1 + predict_repeats(args.quick, args.shape))]
    return {"predict_s": times[1:], "predict_rows_per_s": rows / median(times[1:])}


def keras_timings(keras_module, model, inputs, y, args):
    """Train a compiled Keras model and time its epochs and its prediction.

    One ``model.fit`` runs the warm-up and the timed epochs; a callback times
    each epoch, so ``fit``'s one-off set-up is not counted against the model.

    Returns
    -------
    dict
        ``first_epoch_s``, ``epoch_s`` (the timed epochs), ``train_rows_per_s``,
        ``predict_s``, ``predict_rows_per_s`` and ``train_auc``, in that order.
    """
    rows = len(y)
    warm, timed_epochs = epochs_for(args.shape, args.quick)
    epoch_times = []
    model.fit(
        inputs,
        y.astype(np.float32),
        batch_size=args.batch_size,
        epochs=warm + timed_epochs,
        shuffle=True,
        verbose=0,
        callbacks=[epoch_timer_callback(keras_module, epoch_times)],
    )

    def predict():
        return model.predict(inputs, batch_size=args.batch_size, verbose=0)

    return {
        "first_epoch_s": epoch_times[0],
        "epoch_s": epoch_times[warm:],
        "train_rows_per_s": rows / median(epoch_times[warm:]),
        **prediction_timings(predict, rows, args),
        "train_auc": train_auc(y, predict()),
    }
