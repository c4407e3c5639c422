"""``make demo``: build the bundled demo models, serve them, send real predictions, say where.

Builds half_plus_two and a digits classifier (scikit-learn's bundled digits, trained in seconds)
under ``./demo_models``, starts a server from a models.config that real TensorFlow Serving reads
unchanged, predicts with both, prints the answers and stops the server; ``--keep-serving`` keeps
it up until Ctrl-C and prints its address and ready-to-paste ``curl`` lines.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading

import numpy as np

from tfserve_magic.serving.process.native_log import quiet_native_startup

__all__ = ["main"]


def _build(root: str) -> tuple[str, float | None]:
    from tfserve_magic.demo.models import build_digits_classifier, build_half_plus_two

    accuracy = None
    half = os.path.join(root, "half_plus_two")
    if not os.path.isdir(os.path.join(half, "1")):
        print(f"Building half_plus_two (y = 0.5 x + 2) in {half}/1")
        build_half_plus_two(half, version=1)
    digits = os.path.join(root, "digits")
    if not os.path.isdir(os.path.join(digits, "1")):
        print(f"Training the digits classifier in {digits}/1 ...")
        _, accuracy = build_digits_classifier(digits, version=1)
        print(f"  test accuracy {accuracy:.3f}")
    from tfserve_magic.serving.models.config import ModelConfig, write_model_config_file

    config = os.path.join(root, "models.config")
    write_model_config_file(config, [ModelConfig("half_plus_two", half),
                                     ModelConfig("digits", digits)])
    return config, accuracy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfserve_magic.demo", description=__doc__)
    parser.add_argument("--dir", default="demo_models", help="where the demo models go")
    parser.add_argument("--port", type=int, default=0, help="REST port (0: pick a free one)")
    parser.add_argument("--keep-serving", action="store_true", help="serve until Ctrl-C")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's native start-up messages and every request")
    args = parser.parse_args(argv)

    root = os.path.abspath(args.dir)
    os.makedirs(root, exist_ok=True)
    with quiet_native_startup(args.verbose):  # building the models imports TensorFlow
        config, _ = _build(root)

    from sklearn.datasets import load_digits

    from tfserve_magic.lifecycle.launcher import start

    print(f"Starting the model server on {config} ...")
    handle = start(config=config, name="demo", port=args.port, verbose=args.verbose)
    try:
        x = np.array([1.0, 2.0, 5.0], dtype=np.float32)
        y = handle.predict("half_plus_two", x)
        print(f"half_plus_two{x.tolist()} -> {np.asarray(y).tolist()}   (expected [2.5, 3.0, 4.5])")
        digits = load_digits()
        images = (digits.data[-5:] / 16.0).astype(np.float32)
        result = handle.predict("digits", images)
        classes = result["classes"] if isinstance(result, dict) else np.argmax(result, axis=-1)
        print(f"digits: predicted {np.asarray(classes).tolist()}, true "
              f"{digits.target[-5:].tolist()}")
        if args.keep_serving:
            body = json.dumps({"instances": [1.0, 2.0, 5.0]})
            print(f"\nServing at {handle.url}/ (open it in a browser: models, versions and a "
                  "predict form), until Ctrl-C. Try:\n"
                  f"  curl {handle.url}/v1/models/half_plus_two\n"
                  f"  curl -d '{body}' {handle.url}/v1/models/half_plus_two:predict\n")
            done = threading.Event()
            signal.signal(signal.SIGINT, lambda *_: done.set())
            signal.signal(signal.SIGTERM, lambda *_: done.set())
            done.wait()
        else:
            print("\nThe demo stops its server now; `make demo KEEP=1` keeps it serving (with "
                  "curl lines to try and a page to open in a browser).")
    finally:
        handle.stop()
        print("Server stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
