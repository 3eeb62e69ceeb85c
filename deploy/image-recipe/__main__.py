#!/usr/bin/env python3
"""Reads the Dockerfile the way an image build does, for deploy/check-image.sh
(`python3 deploy/image-recipe SUBCOMMAND`).

Subcommands (check-image.sh calls them in this order):
  check    the recipe agrees with the workspace and fly.toml (toolchain, port, volume,
           entrypoint, user, build context)
  build    performs the build stages the final stage depends on, in scratch directories:
           each COPY copies exactly its sources (from the build context, filtered by
           .dockerignore, or from an earlier stage's scratch directory), each RUN runs there
  msrv     every crate the image compiles supports the image's toolchain
  runtime  assembles the final stage's files (its COPY lines) and prints, as shell
           assignments, how that stage would start: user, environment, command

Understood instructions: ARG, FROM [--platform] image|stage [AS name], WORKDIR, ENV, COPY
[--from] [--chown] [--chmod] [--link] src... dest, RUN, USER, EXPOSE, VOLUME, ENTRYPOINT,
CMD, LABEL, STOPSIGNAL, HEALTHCHECK. Anything else, heredocs, or a build-stage RUN that is not
a single `cargo ...` command, is refused: a recipe change this script cannot follow fails the
check instead of being skipped. A build-stage RUN runs on this machine (with its toolchain),
so only cargo commands are allowed there; the final stage's RUN lines (package installs,
useradd) belong to its base image and are listed, not run.
"""

from __future__ import annotations

import argparse
import sys

from build import cmd_build
from checks import cmd_check, cmd_msrv
from dockerfile import RecipeError
from runtime import cmd_runtime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--context", default=".")
    parser.add_argument("--dockerfile", default="Dockerfile")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check")
    build = sub.add_parser("build")
    build.add_argument("--work", required=True, help="scratch directories, one per stage")
    build.add_argument("--cache", required=True, help="kept between runs: cargo's target")
    build.add_argument("--tools", required=True, help="CARGO_INSTALL_ROOT for `cargo install`")
    msrv = sub.add_parser("msrv")
    msrv.add_argument("--work", required=True)
    msrv.add_argument("--bin", required=True)
    runtime = sub.add_parser("runtime")
    runtime.add_argument("--work", required=True)
    runtime.add_argument("--rootfs", required=True)
    args = parser.parse_args()
    try:
        {"check": cmd_check, "build": cmd_build, "msrv": cmd_msrv,
         "runtime": cmd_runtime}[args.command](args)
    except RecipeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
