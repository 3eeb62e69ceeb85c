"""`check` (the recipe agrees with the workspace and fly.toml) and `msrv`."""

from __future__ import annotations

import argparse
import json
import posixpath
import re
import subprocess
import tomllib
from pathlib import Path

from context import Context, rootfs_path
from dockerfile import (RecipeError, copy_flags, load, say, stage_closure, stage_dirs,
                        stage_state)


def workspace_rust_version(context: Path) -> str:
    manifest = tomllib.loads((context / "Cargo.toml").read_text())
    version = manifest.get("package", {}).get("rust-version")
    if isinstance(version, dict) or version is None:
        version = manifest.get("workspace", {}).get("package", {}).get("rust-version")
    if not isinstance(version, str):
        raise RecipeError("Cargo.toml declares no rust-version (the image's toolchain)")
    return version


def bind_port(value: str, what: str) -> int:
    m = re.fullmatch(r"(.+):(\d+)", value)
    if m is None:
        raise RecipeError(f"{what} = {value!r} is not ADDRESS:PORT")
    return int(m.group(2))


def cmd_check(args: argparse.Namespace) -> None:
    df, context = load(args)
    final = df.stages[-1]
    closure = stage_closure(df, final)
    say("    stages: " + " -> ".join(
        f"{s.label()} (FROM {s.base})" for s in closure))

    rust_version = workspace_rust_version(context)
    declared = df.global_args.get("RUST_VERSION")
    if declared != rust_version:
        raise RecipeError(f"Dockerfile ARG RUST_VERSION={declared} but Cargo.toml's "
                          f"rust-version is {rust_version}: the image must build with the "
                          f"workspace's toolchain; set ARG RUST_VERSION={rust_version}")
    builders = [s for s in closure if s is not final and df.parent(s) is None]
    for stage in builders:
        if stage.base.startswith("rust:") and not re.match(
                rf"rust:{re.escape(rust_version)}(\.\d+)?(-|$)", stage.base):
            raise RecipeError(f"Dockerfile:{stage.line} FROM {stage.base}: not the "
                              f"workspace's toolchain {rust_version}; use ${{RUST_VERSION}}")
    say(f"    toolchain: {', '.join(s.base for s in builders)} = rust-version {rust_version}")

    state = stage_state(df, final)
    if state.user in (None, "", "root", "0") or (state.user or "").startswith(("0:", "root:")):
        raise RecipeError(f"the final stage runs as {state.user or 'root'}: add USER with an "
                          "unprivileged user")
    if state.entrypoint is None or state.entrypoint_shell_form:
        raise RecipeError("ENTRYPOINT must be exec form ([\"/usr/bin/tini\", \"--\", ...]): in "
                          "shell form /bin/sh is PID 1 and SIGTERM never reaches the server")
    if posixpath.basename(state.entrypoint[0]) != "tini":
        raise RecipeError(f"ENTRYPOINT starts with {state.entrypoint[0]}, not tini: PID 1 "
                          "must forward SIGTERM so that the server drains")
    say(f"    runtime: USER {state.user}, ENTRYPOINT {state.entrypoint}, CMD {state.cmd}")

    image_bind = state.env.get("PERMETRIX_BIND")
    data_dir = state.env.get("PERMETRIX_DATA_DIR")
    if image_bind is None or data_dir is None:
        raise RecipeError("the final stage must set ENV PERMETRIX_BIND and PERMETRIX_DATA_DIR")
    port = bind_port(image_bind, "ENV PERMETRIX_BIND")
    if not image_bind.startswith("0.0.0.0:"):
        raise RecipeError(f"ENV PERMETRIX_BIND={image_bind}: bind 0.0.0.0 so that the "
                          "platform's proxy reaches the server")
    if [str(port)] != [p.split("/")[0] for p in state.expose]:
        raise RecipeError(f"EXPOSE {state.expose} differs from the port of "
                          f"PERMETRIX_BIND ({port})")
    if data_dir not in state.volumes:
        raise RecipeError(f"PERMETRIX_DATA_DIR={data_dir} is not a VOLUME {state.volumes}")

    fly_path = context / "fly.toml"
    fly = tomllib.loads(fly_path.read_text())
    fly_dockerfile = fly.get("build", {}).get("dockerfile", "Dockerfile")
    if Path(fly_dockerfile).name != df.path.name:
        raise RecipeError(f"fly.toml builds {fly_dockerfile}, not {df.path.name}")
    internal = fly.get("http_service", {}).get("internal_port")
    if internal != port:
        raise RecipeError(f"fly.toml internal_port = {internal}, but the image listens on "
                          f"{port} (ENV PERMETRIX_BIND): make them equal")
    fly_env = fly.get("env", {})
    if "PERMETRIX_BIND" in fly_env and bind_port(fly_env["PERMETRIX_BIND"],
                                                 "fly.toml PERMETRIX_BIND") != internal:
        raise RecipeError(f"fly.toml [env] PERMETRIX_BIND = {fly_env['PERMETRIX_BIND']} "
                          f"differs from internal_port = {internal}")
    effective_data = fly_env.get("PERMETRIX_DATA_DIR", data_dir)
    mounts = fly.get("mounts", [])
    mounts = [mounts] if isinstance(mounts, dict) else mounts
    destinations = [m.get("destination") for m in mounts]
    if effective_data not in destinations:
        raise RecipeError(f"the data directory {effective_data} is not fly.toml's volume "
                          f"mount {destinations}: the store would not survive a restart")
    say(f"    fly.toml: internal_port {internal} = image port, volume {effective_data} = "
        f"PERMETRIX_DATA_DIR, kill_signal {fly.get('kill_signal', 'SIGINT (default)')}")

    ctx = Context(context)
    for needed_out in ("target", ".git"):
        if not ctx.excluded(needed_out):
            raise RecipeError(f".dockerignore does not leave out {needed_out}/: add it")
    say(f"    build context: {sum(1 for d in ctx.paths.values() if not d)} files after "
        f".dockerignore ({len(ctx.rules)} patterns)")


def cmd_msrv(args: argparse.Namespace) -> None:
    df, _ = load(args)
    final = df.stages[-1]
    sources = [df.stage(copy_flags(i)[0]["from"]) for i in final.instrs
               if i.keyword == "COPY" and "from" in copy_flags(i)[0]]
    if not sources or sources[0] is None:
        raise RecipeError("the final stage copies from no build stage")
    builder = sources[0]
    workspace = rootfs_path(stage_dirs(df, Path(args.work))[builder.index],
                            stage_state(df, builder).workdir)
    rust_version = df.global_args.get("RUST_VERSION", "")
    host = next(line.split()[1] for line in subprocess.run(
        ["rustc", "-vV"], capture_output=True, text=True, check=True).stdout.splitlines()
        if line.startswith("host:"))
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked", "--filter-platform", host],
        cwd=workspace, capture_output=True, text=True)
    if out.returncode != 0:
        raise RecipeError(f"cargo metadata failed:\n{out.stderr}")
    meta = json.loads(out.stdout)
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    roots = [p["id"] for p in meta["packages"] if any(
        t["name"] == args.bin and "bin" in t["kind"] for t in p["targets"])]
    if not roots:
        raise RecipeError(f"no package has a bin target {args.bin}")
    seen, todo = set(roots), list(roots)
    while todo:
        for dep in nodes[todo.pop()]["deps"]:
            if any(k["kind"] in (None, "build") for k in dep["dep_kinds"]) and \
                    dep["pkg"] not in seen:
                seen.add(dep["pkg"])
                todo.append(dep["pkg"])

    def version(v: str) -> tuple[int, ...]:
        return tuple(int(x) for x in v.split("."))

    # The image's tag names a minor release (rust:1.89 is its newest patch), so a crate
    # is compared on as many components as the tag has: 1.89.0 and 1.89.3 fit rust:1.89.
    limit = version(rust_version)
    newer = sorted(f"{packages[i]['name']} {packages[i]['version']} (rust-version "
                   f"{packages[i]['rust_version']})" for i in seen
                   if packages[i].get("rust_version")
                   and version(packages[i]["rust_version"])[:len(limit)] > limit)
    if newer:
        raise RecipeError(f"crates the image compiles need a newer toolchain than "
                          f"{rust_version}: {', '.join(newer)}. Pick versions that "
                          "support it (cargo update -p NAME --precise V), or raise "
                          "rust-version and ARG RUST_VERSION together")
    declared = sum(1 for i in seen if packages[i].get("rust_version"))
    say(f"    {len(seen)} crates compiled into {args.bin} (in {builder.label()}); {declared} "
        f"declare a rust-version, none above the image's {rust_version}")
