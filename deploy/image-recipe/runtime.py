"""`runtime`: the final stage's files in a scratch root, and how it starts, for the shell."""

from __future__ import annotations

import argparse
import posixpath
import shlex
import sys
import tomllib
from pathlib import Path

from context import Context, perform_copy, rootfs_path
from dockerfile import Instr, RecipeError, StageState, interpret, load, stage_dirs


# The default PATH of Debian-based images (the final stage's programs are looked up in it).
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def cmd_runtime(args: argparse.Namespace) -> None:
    df, context_root = load(args)
    final = df.stages[-1]
    rootfs, work = Path(args.rootfs), Path(args.work)
    built = stage_dirs(df, work)
    context = Context(context_root)
    state = StageState()
    notes: list[str] = []

    def on_copy(instr: Instr, env: dict[str, str]) -> None:
        n = perform_copy(df, instr, state, rootfs, context, built, env)
        notes.append(f"performed: COPY {instr.args} (files: {n})")

    def on_run(instr: Instr, _env: dict[str, str]) -> None:
        notes.append("not performed (base image's packages and users): RUN "
                     + " ".join(instr.args.split()))

    if df.parent(final) is not None:
        raise RecipeError("the final stage is FROM another stage; this check expects the "
                          "runtime stage to start from a base image")
    interpret(df, final, state, on_copy, on_run)
    for volume in state.volumes:
        rootfs_path(rootfs, volume).mkdir(parents=True, exist_ok=True)
    rootfs_path(rootfs, state.workdir).mkdir(parents=True, exist_ok=True)

    def mapped(value: str) -> str:
        """A path inside a volume, or one the final stage's COPY lines put there, as it
        lies in the scratch root; anything else as it is."""
        if value.startswith("/") and (
                any(value == v or value.startswith(v.rstrip("/") + "/") for v in state.volumes)
                or rootfs_path(rootfs, value).exists()):
            return str(rootfs_path(rootfs, value))
        return value

    fly = tomllib.loads((context_root / "fly.toml").read_text())
    env = {"PATH": IMAGE_PATH, **state.env, **fly.get("env", {})}
    env = {k: mapped(str(v)) for k, v in env.items()}
    argv = list(state.entrypoint or []) + list(state.cmd or [])
    init = ""
    if argv and posixpath.basename(argv[0]) == "tini":
        if Path(argv[0]).exists() and not rootfs_path(rootfs, argv[0]).exists():
            init = argv[0]
            notes.append(f"{argv[0]} comes from the base image: this machine's (Debian's "
                         "tini package, which the recipe's apt-get installs)")
        else:
            notes.append(f"NOT CHECKED: {argv[0]} is absent here (apt-get install tini); "
                         "the server is started without it")
            argv = argv[argv.index("--") + 1:] if "--" in argv else argv[1:]
    program_index = (argv.index("--") + 1 if "--" in argv else 1) if init else 0
    program = argv[program_index]
    if not program.startswith("/"):
        for directory in env["PATH"].split(":"):
            if rootfs_path(rootfs, posixpath.join(directory, program)).exists():
                program = posixpath.join(directory, program)
                break
    if not rootfs_path(rootfs, program).exists():
        raise RecipeError(f"the final stage's command runs {argv[program_index]}, which no "
                          "COPY of the final stage provides")
    argv[program_index] = str(rootfs_path(rootfs, program))

    for note in notes:
        print(f"    {note}", file=sys.stderr)

    def assign(name: str, value) -> str:
        if isinstance(value, list):
            return f"{name}=(" + " ".join(shlex.quote(v) for v in value) + ")"
        return f"{name}={shlex.quote(value)}"

    print(assign("RUNTIME_USER", state.user or ""))
    print(assign("RUNTIME_CWD", str(rootfs_path(rootfs, state.workdir))))
    print(assign("RUNTIME_INIT", init))
    print(assign("RUNTIME_ARGV", argv))
    print(assign("RUNTIME_PROGRAM", argv[program_index]))
    print(assign("RUNTIME_ENV", [f"{k}={v}" for k, v in env.items()]))
    print(assign("RUNTIME_VOLUMES", [str(rootfs_path(rootfs, v)) for v in state.volumes]))
