"""`build`: the build stages, each in a scratch directory, their RUN lines on this machine."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

from context import Context, perform_copy, rootfs_path
from dockerfile import (Instr, RecipeError, StageState, exec_form, interpret, load, say,
                        stage_closure, stage_dirs)


# What a build-stage RUN keeps of this machine's environment: enough for cargo to find its
# toolchain, registry cache and network, nothing that changes how it builds
# (CARGO_TARGET_DIR, RUSTFLAGS, CARGO_BUILD_* ...).
PASS_ENV = re.compile(
    r"^(PATH|HOME|USER|LANG|LC_ALL|TERM|TMPDIR|CARGO_HOME|RUSTUP_HOME|RUSTUP_TOOLCHAIN"
    r"|(?i:https?_proxy|no_proxy|all_proxy)|SSL_CERT_FILE|SSL_CERT_DIR"
    r"|CARGO_HTTP_\w+|CARGO_NET_\w+|CARGO_REGISTRIES_\w+|CARGO_REGISTRY_\w+)$"
)


def run_env(state: StageState, args: dict[str, str], tools: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if PASS_ENV.match(k)}
    env.update(args)
    env.update(state.env)
    env["CARGO_INSTALL_ROOT"] = str(tools)
    env["PATH"] = f"{tools / 'bin'}:{os.environ.get('PATH', '')}"
    return env


RUN_HINTS = [
    ("chef prepare", "The planner reads every workspace manifest and its targets from the "
     "build context: a member or target file is missing from it (left out by .dockerignore?) "
     "or a manifest does not load."),
    ("chef cook", "The dependency step builds from recipe.json alone, with dummy sources for "
     "the targets the planner found: a target declared without `path` whose file is not in "
     "the build context gets none (give it a path, or keep the file in the context), "
     "Cargo.lock is out of date (--locked), or a dependency fails to build."),
    ("cargo build", "The full build sees only what the builder stage's COPY lines copy from "
     "the build context: a file the build reads (include_str!, a member, a target) is left "
     "out by .dockerignore or not copied, or Cargo.lock is out of date (--locked)."),
    ("cargo install", "Installing a build tool failed: is the pinned version on crates.io, "
     "and does it build with --locked?"),
]


SHELL_SYNTAX = re.compile(r"[;&|`<>()]")


def perform_run(instr: Instr, state: StageState, rootfs: Path, cache: Path,
                env: dict[str, str]) -> None:
    argv = exec_form(instr.args)
    text = " ".join(argv) if argv is not None else instr.args
    words = argv if argv is not None else shlex.split(text)
    if not words or words[0] != "cargo" or (argv is None and SHELL_SYNTAX.search(text)):
        raise RecipeError(
            f"{instr.where()}: a build-stage RUN this check cannot perform. It runs on this "
            "machine, not in a container, so it allows single `cargo ...` commands only; keep "
            "other preparation in the base image, or teach deploy/image-recipe/")
    workdir = rootfs_path(rootfs, state.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    # Cargo's target directory is the build cache: what Docker keeps in the layer of the
    # dependency step, this check keeps between runs.
    target = workdir / "target"
    if not target.exists() and state.workdir != "/":
        (cache / "cargo-target").mkdir(parents=True, exist_ok=True)
        target.symlink_to(cache / "cargo-target")
    if words[:2] == ["cargo", "install"]:
        # A build tool's optimisation is not what this check is about; unoptimised, it
        # installs in minutes less on a cold cache.
        env = {**env, "CARGO_PROFILE_RELEASE_OPT_LEVEL": "0",
               "CARGO_PROFILE_RELEASE_DEBUG": "false", "CARGO_PROFILE_RELEASE_LTO": "false"}
    command = argv if argv is not None else ["/bin/sh", "-c", text]
    started = time.monotonic()
    result = subprocess.run(command, cwd=workdir, env=env)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        hint = next((h for key, h in RUN_HINTS if key in text), "")
        raise RecipeError(f"{instr.where()}: exited with {result.returncode} after "
                          f"{elapsed:.0f} s. {hint}")
    say(f"    done in {elapsed:.0f} s")


def cmd_build(args: argparse.Namespace) -> None:
    df, context_root = load(args)
    final = df.stages[-1]
    work, cache, tools = Path(args.work), Path(args.cache), Path(args.tools)
    context = Context(context_root)
    built: dict[int, Path] = {}
    states: dict[int, StageState] = {}
    stages = [s for s in stage_closure(df, final) if s is not final]
    dirs = stage_dirs(df, work)
    for stage in stages:
        rootfs = dirs[stage.index]
        if rootfs.exists():
            shutil.rmtree(rootfs)
        parent = df.parent(stage)
        if parent is not None:
            shutil.copytree(built[parent.index], rootfs, symlinks=True)
            inherited = states[parent.index]
            state = StageState(inherited.workdir, dict(inherited.env), inherited.user)
            origin = f"a copy of stage {parent.label()}'s scratch directory"
        else:
            rootfs.mkdir(parents=True)
            state = StageState()
            origin = f"empty; {stage.base} comes from this machine: its cargo and rustc"
        say(f"--> stage {stage.label()} in {rootfs} ({origin})")

        def on_copy(instr: Instr, env: dict[str, str], rootfs: Path = rootfs,
                    state: StageState = state) -> None:
            say(f"--> [{stage.label()}] COPY {instr.args}")
            n = perform_copy(df, instr, state, rootfs, context, built, env)
            say(f"    files copied: {n}")

        def on_run(instr: Instr, stage_env: dict[str, str], rootfs: Path = rootfs,
                   state: StageState = state) -> None:
            say(f"--> [{stage.label()}] RUN {instr.args}")
            perform_run(instr, state, rootfs, cache, run_env(state, stage_env, tools))

        interpret(df, stage, state, on_copy, on_run)
        rootfs_path(rootfs, state.workdir).mkdir(parents=True, exist_ok=True)
        built[stage.index] = rootfs
        states[stage.index] = state
