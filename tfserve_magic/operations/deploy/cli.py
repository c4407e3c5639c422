"""``tfserve-deploy``: the console script for CI pipelines, and the arguments it shares with
``%tfserve deploy``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["add_arguments", "deploy_from_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The deploy arguments, for this script and for the magic's ``deploy`` command."""
    parser.add_argument("server", help="the server to deploy (name or REST port; %%tfserve list)")
    parser.add_argument("--out", required=True, help="the deployment folder to write")
    parser.add_argument("--target", default="all",
                        help="docker, kubernetes, kserve, a comma list, or all (default)")
    parser.add_argument("--replicas", type=int, default=1, help="pods (default 1)")
    parser.add_argument("--gpu", type=int, nargs="?", const=1, default=0, metavar="N",
                        help="GPUs per replica: the -gpu image and nvidia.com/gpu requests")
    parser.add_argument("--image", help="the image to build and run (default: <server>:latest)")
    parser.add_argument("--storage-uri", help="gs:// or s3:// folder holding one folder per "
                        "model, instead of copying the versions into the image")
    parser.add_argument("--namespace", help="Kubernetes namespace")


def deploy_from_arguments(args: argparse.Namespace) -> str:
    """Run a deploy from parsed arguments; returns the summary. Raises DeployError."""
    from tfserve_magic.operations.deploy import deploy

    result = deploy(args.server, args.out, target=args.target, replicas=args.replicas,
                    gpu=args.gpu, image=args.image, storage_uri=args.storage_uri,
                    namespace=args.namespace)
    return result.summary()


def main(argv: Sequence[str] | None = None) -> int:
    from tfserve_magic.operations.deploy.plan import DeployError

    parser = argparse.ArgumentParser(
        prog="tfserve-deploy", description="Write a TensorFlow Serving deployment (Docker, "
        "Kubernetes, KServe) for a server started with tfserve_magic.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        print(deploy_from_arguments(args))
    except (DeployError, OSError) as error:
        print(f"tfserve-deploy: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
