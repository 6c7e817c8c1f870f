"""Benchmark edgecnn on the MLPerf-Tiny-shaped models against LiteRT and tflite-micro.

    python benchmarks/bench.py            # the five committed networks
    python benchmarks/bench.py MODEL...   # any models

Same as `edgecnn bench`; outputs are checked before anything is timed.
"""

import glob
import os
import sys

from edgecnn.tools.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETS = ["mobilenet_v1_025_96", "ds_cnn", "resnet8", "fc_autoencoder", "mobilenet_v2_035_96"]

if __name__ == "__main__":
    models = sys.argv[1:] or [os.path.join(ROOT, "tests", "models", "nets", f"{n}.tflite")
                              for n in NETS]
    sys.exit(main(["bench", *models]))
