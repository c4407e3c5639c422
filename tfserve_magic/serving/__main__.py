"""``python -m tfserve_magic.serving`` / ``tfserve-server``: flags in, exit code out."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from tfserve_magic.serving.process.flags import parse_flags
from tfserve_magic.serving.process.spare import SPARE_FLAG, await_orders
from tfserve_magic.serving.safelog import OneLineFormatter
from tfserve_magic.serving.status_errors import ConfigError


def main(argv: Sequence[str] | None = None) -> int:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter(
        "%(asctime)s.%(msecs)03d %(levelname).1s %(name)s] %(message)s", "%Y-%m-%d %H:%M:%S"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    flags = list(sys.argv[1:] if argv is None else argv)
    if flags == [SPARE_FLAG]:  # a warm spare: the flags come later, on stdin
        orders = await_orders()
        if orders is None:
            return 0
        flags = orders
    try:
        options, show_version = parse_flags(flags)
    except ConfigError as exc:
        print(f"tfserve-server: error: {exc}\nRun 'tfserve-server --help' for the flags.",
              file=sys.stderr)
        return 1
    if show_version:
        from tfserve_magic import __version__

        print(f"TensorFlow ModelServer: tfserve_magic-{__version__}\n"
              "TensorFlow Library: see 'pip show tensorflow'")
        return 0
    from tfserve_magic.serving.process.server import run

    return run(options)


if __name__ == "__main__":
    sys.exit(main())
