#!/usr/bin/env python3
"""Training speed of Larq/TensorFlow (CPU) on the binary conv network of `cbnn train --arch conv`.

The network is cbnn's conv preset `c64k5,p2,c128k5,p2,d256` on 8 bit planes of MNIST:

    input 28x28x8 of +-1 (plane b = bit b of the pixel; 1 -> +1, 0 -> -1)
    QuantConv2D 5x5, 64, same padding with -1, sign weights, no bias -> BatchNorm -> ste_sign
    MaxPool 2x2
    QuantConv2D 5x5, 128, same padding with -1 -> BatchNorm -> ste_sign
    MaxPool 2x2, flatten
    QuantDense 256 -> BatchNorm -> ste_sign
    QuantDense 10 -> times a learned scale alpha = exp(theta) -> softmax cross-entropy

Adam, learning rate 0.01, batch 100. One warm-up pass of 20 batches (graph tracing), then the
timed epoch(s). Prints one JSON line: images/s, versions, threads, final training accuracy.

Setup (larq is built on Keras 2 (tf.keras); TensorFlow 2.16 and later default to Keras 3, so
this pins TensorFlow 2.15, with the numpy 1.26 it brings in):

    python3 -m venv /work/larq-venv && /work/larq-venv/bin/pip install --upgrade pip && \
        /work/larq-venv/bin/pip install "tensorflow-cpu==2.15.1" "larq==0.13.3"

Run:

    /work/larq-venv/bin/python scripts/larq_conv_speed.py [--images 60000] [--epochs 1] [--threads N]
        [--mnist DIR]   (default ../shared/datasets/mnist beside the repository)
"""

import argparse
import gzip
import json
import os
import time

import numpy as np

# The repository's own MNIST location; --mnist overrides it.
MNIST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "datasets", "mnist")
BATCH = 100
WARMUP_BATCHES = 20


def read_idx(directory, name):
    """An IDX file of MNIST as a uint8 array (plain or gzipped)."""
    path = os.path.join(directory, name)
    opener = open if os.path.exists(path) else gzip.open
    with opener(path if os.path.exists(path) else path + ".gz", "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def bit_planes(images):
    """N x 28 x 28 uint8 -> N x 28 x 28 x 8 float32 of +-1, most significant plane first."""
    bits = (images[..., None] >> np.arange(7, -1, -1, dtype=np.uint8)) & 1
    return bits.astype(np.float32) * 2.0 - 1.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=60000, help="first N training images")
    ap.add_argument("--epochs", type=int, default=1, help="timed epochs")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="TF intra/inter op threads")
    ap.add_argument("--mnist", default=MNIST, help="directory of the MNIST IDX files")
    args = ap.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep stdout/stderr quiet
    import tensorflow as tf
    import larq as lq

    # Must be set before TensorFlow runs any op.
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    x = bit_planes(read_idx(args.mnist, "train-images-idx3-ubyte")[: args.images])
    y = read_idx(args.mnist, "train-labels-idx1-ubyte")[: args.images].astype(np.int32)

    class Scale(tf.keras.layers.Layer):
        """Multiplies the logits by a learned positive scalar exp(theta), as cbnn does."""

        def __init__(self, fan_in, **kw):
            super().__init__(**kw)
            self.init = -0.5 * np.log(fan_in)  # alpha = 1/sqrt(fan_in) at the start

        def build(self, _):
            self.theta = self.add_weight(
                name="theta", shape=(), initializer=tf.keras.initializers.Constant(self.init)
            )

        def call(self, z):
            return z * tf.exp(self.theta)

    # Every layer's input is already +-1 (the bit planes, or the sign layer before it), so no
    # layer quantizes its input; the weights are sign(W) with the straight-through estimator.
    binary = dict(
        input_quantizer=None,
        kernel_quantizer="ste_sign",
        kernel_constraint="weight_clip",
        use_bias=False,
    )
    conv = dict(kernel_size=5, padding="same", pad_values=-1.0, **binary)
    bn, sign = tf.keras.layers.BatchNormalization, lq.quantizers.SteSign
    model = tf.keras.Sequential(
        [
            tf.keras.Input((28, 28, 8)),
            lq.layers.QuantConv2D(64, **conv), bn(), sign(),
            tf.keras.layers.MaxPool2D(2),
            lq.layers.QuantConv2D(128, **conv), bn(), sign(),
            tf.keras.layers.MaxPool2D(2),
            tf.keras.layers.Flatten(),
            lq.layers.QuantDense(256, **binary), bn(), sign(),
            lq.layers.QuantDense(10, **binary),
            Scale(256),
        ]
    )
    model.compile(
        optimizer=tf.keras.optimizers.Adam(0.01),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )

    # Warm-up: trace the training step and touch every kernel once. These batches train too,
    # so the accuracy below is that of a model which also saw them.
    warm = min(len(x), WARMUP_BATCHES * BATCH)
    model.fit(x[:warm], y[:warm], batch_size=BATCH, epochs=1, shuffle=False, verbose=0)

    t0 = time.perf_counter()
    hist = model.fit(x, y, batch_size=BATCH, epochs=args.epochs, shuffle=True, verbose=0)
    seconds = time.perf_counter() - t0

    print(
        json.dumps(
            {
                "framework": "larq",
                "tensorflow": tf.__version__,
                "larq": lq.__version__,
                "arch": "c64k5,p2,c128k5,p2,d256",
                "images": len(x),
                "epochs": args.epochs,
                "batch": BATCH,
                "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
                "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
                "seconds": round(seconds, 3),
                "images_per_s": round(len(x) * args.epochs / seconds, 1),
                # Running accuracy (training mode) over the last timed epoch.
                "train_accuracy": round(float(hist.history["accuracy"][-1]), 4),
            }
        )
    )


if __name__ == "__main__":
    main()
