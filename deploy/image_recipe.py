#!/usr/bin/env python3
"""Reads the Dockerfile the way an image build does, for deploy/check-image.sh.

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
import json
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

KNOWN = {
    "ARG", "FROM", "WORKDIR", "ENV", "COPY", "RUN", "USER", "EXPOSE", "VOLUME",
    "ENTRYPOINT", "CMD", "LABEL", "STOPSIGNAL", "HEALTHCHECK",
}
# The default PATH of Debian-based images (the final stage's programs are looked up in it).
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What a build-stage RUN keeps of this machine's environment: enough for cargo to find its
# toolchain, registry cache and network, nothing that changes how it builds
# (CARGO_TARGET_DIR, RUSTFLAGS, CARGO_BUILD_* ...).
PASS_ENV = re.compile(
    r"^(PATH|HOME|USER|LANG|LC_ALL|TERM|TMPDIR|CARGO_HOME|RUSTUP_HOME|RUSTUP_TOOLCHAIN"
    r"|(?i:https?_proxy|no_proxy|all_proxy)|SSL_CERT_FILE|SSL_CERT_DIR"
    r"|CARGO_HTTP_\w+|CARGO_NET_\w+|CARGO_REGISTRIES_\w+|CARGO_REGISTRY_\w+)$"
)


class RecipeError(Exception):
    """A recipe problem, said in terms of the Dockerfile line and what to do."""


def say(msg: str) -> None:
    print(msg, flush=True)


# ---------------------------------------------------------------- Dockerfile parsing


@dataclass
class Instr:
    line: int
    keyword: str
    args: str

    def where(self) -> str:
        return f"Dockerfile:{self.line} {self.keyword} {self.args}"


@dataclass
class Stage:
    index: int
    line: int
    base: str  # as written, expanded with the global ARGs
    name: str | None
    instrs: list[Instr] = field(default_factory=list)

    def label(self) -> str:
        return self.name or f"stage {self.index}"


@dataclass
class Dockerfile:
    path: Path
    global_args: dict[str, str]
    stages: list[Stage]

    def stage(self, ref: str) -> Stage | None:
        for stage in self.stages:
            if stage.name == ref.lower() or (ref.isdigit() and stage.index == int(ref)):
                return stage
        return None

    def parent(self, stage: Stage) -> Stage | None:
        """The earlier stage this one is FROM, or None for an external image."""
        parent = self.stage(stage.base)
        return parent if parent is not None and parent.index < stage.index else None


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Joins continuation lines and drops comments, as the Dockerfile parser does."""
    out: list[tuple[int, str]] = []
    buf, start = "", 0
    for no, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not buf):
            continue
        if not stripped:
            continue  # an empty line inside a continuation
        if not buf:
            start = no
        if stripped.endswith("\\"):
            buf += raw.rstrip()[:-1]
            continue
        buf += raw
        out.append((start, buf.strip()))
        buf = ""
    if buf.strip():
        out.append((start, buf.strip()))
    return out


VAR = re.compile(r"\\\$|\$(?:\{(\w+)(?::([-+])([^}]*))?\}|(\w+))")


def expand(text: str, env: dict[str, str]) -> str:
    """Dockerfile variable substitution: $X, ${X}, ${X:-default}, ${X:+alternative}."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "\\$":
            return "$"
        name = m.group(1) or m.group(4)
        value = env.get(name, "")
        if m.group(2) == "-":
            return value or m.group(3)
        if m.group(2) == "+":
            return m.group(3) if value else ""
        return value

    return VAR.sub(sub, text)


def parse_dockerfile(path: Path) -> Dockerfile:
    text = path.read_text()
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line, content in logical_lines(text):
        m = re.match(r"(\S+)\s*(.*)", content, re.S)
        assert m is not None
        keyword, args = m.group(1).upper(), m.group(2).strip()
        instr = Instr(line, keyword, args)
        if keyword not in KNOWN:
            raise RecipeError(f"{instr.where()}: an instruction this check does not know; "
                              "teach deploy/image_recipe.py what it means outside a container")
        if keyword in ("RUN", "COPY") and re.search(r"<<-?\s*[\"']?[A-Za-z_]", args):
            raise RecipeError(f"{instr.where()}: heredocs are not understood by this check")
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--platform")]
            base = expand(words[0], global_args)
            name = words[2].lower() if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(len(stages), line, base, name))
        elif not stages:
            if keyword != "ARG":
                raise RecipeError(f"{instr.where()}: only ARG may come before the first FROM")
            global_args.update(parse_assignments(args, global_args, allow_bare=True))
        else:
            stages[-1].instrs.append(instr)
    if not stages:
        raise RecipeError(f"{path}: no FROM")
    return Dockerfile(path, global_args, stages)


def parse_assignments(args: str, env: dict[str, str], allow_bare: bool) -> dict[str, str]:
    """ARG/ENV arguments: `K=V K2="V 2"`, the legacy `ENV K V`, or a bare `ARG K`."""
    words = shlex.split(args)
    if words and "=" not in words[0] and not allow_bare:
        return {words[0]: expand(" ".join(words[1:]), env)}
    out: dict[str, str] = {}
    for word in words:
        key, eq, value = word.partition("=")
        if not eq:
            out[key] = env.get(key, "")
        else:
            out[key] = expand(value, {**env, **out})
    return out


def exec_form(args: str) -> list[str] | None:
    if not args.startswith("["):
        return None
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


@dataclass
class StageState:
    """What a stage's instructions set, as the build goes through them."""

    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    volumes: list[str] = field(default_factory=list)
    expose: list[str] = field(default_factory=list)
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    entrypoint_shell_form: bool = False


def stage_closure(df: Dockerfile, final: Stage) -> list[Stage]:
    """The stages `final` needs (its parents and COPY --from sources), in build order."""
    needed: set[int] = set()

    def visit(stage: Stage) -> None:
        if stage.index in needed:
            return
        needed.add(stage.index)
        parent = df.parent(stage)
        if parent is not None:
            visit(parent)
        for instr in stage.instrs:
            if instr.keyword == "COPY":
                source = copy_flags(instr)[0].get("from")
                if source is not None:
                    ref = df.stage(source)
                    if ref is None or ref.index >= stage.index:
                        raise RecipeError(f"{instr.where()}: --from names no earlier stage "
                                          "(copying from an external image is not checked)")
                    visit(ref)

    visit(final)
    return [s for s in df.stages if s.index in needed]


# ---------------------------------------------------------------- the build context


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore / COPY wildcard pattern as a regex (Go filepath.Match plus `**`)."""
    out, i = "^", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):
                    i += 1
                    out += "(.*/)?"
                else:
                    out += ".*"
                continue
            out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out += re.escape(ch)
            else:
                body = pattern[i + 1:end]
                out += "[" + ("^" + body[1:] if body.startswith(("!", "^")) else body) + "]"
                i = end
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + "$")


def has_wildcard(path: str) -> bool:
    return any(c in path for c in "*?[")


class Context:
    """The build context: the files `docker build .` would send, after .dockerignore."""

    def __init__(self, root: Path):
        self.root = root
        self.rules: list[tuple[re.Pattern[str], bool, str]] = []
        ignore = root / ".dockerignore"
        if ignore.exists():
            for raw in ignore.read_text().splitlines():
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                negate = line.startswith("!")
                pattern = posixpath.normpath(line[1:].strip() if negate else line)
                pattern = pattern.lstrip("/") or "."
                self.rules.append((compile_pattern(pattern), negate, pattern))
        self.paths: dict[str, bool] = {}  # relative path -> is a directory
        self._walk()

    def excluded(self, rel: str) -> bool:
        parts = rel.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        matched = False
        for regex, negate, _ in self.rules:
            if negate and not matched:
                continue
            if any(regex.match(p) for p in prefixes):
                matched = not negate
        return matched

    def _may_reinclude(self, rel: str) -> bool:
        for _, negate, pattern in self.rules:
            if negate:
                literal = re.split(r"[*?\[\\]", pattern, maxsplit=1)[0]
                if literal.startswith(rel + "/") or (rel + "/").startswith(literal):
                    return True
        return False

    def _walk(self) -> None:
        for dirpath, dirnames, filenames in os.walk(self.root):
            base = os.path.relpath(dirpath, self.root)
            base = "" if base == "." else base.replace(os.sep, "/")
            keep = []
            for name in sorted(dirnames):
                rel = f"{base}/{name}" if base else name
                if os.path.islink(os.path.join(dirpath, name)):
                    if not self.excluded(rel):
                        self.paths[rel] = False
                    continue
                if not self.excluded(rel):
                    self.paths[rel] = True
                    keep.append(name)
                elif self._may_reinclude(rel):
                    keep.append(name)
            dirnames[:] = keep
            for name in filenames:
                rel = f"{base}/{name}" if base else name
                if not self.excluded(rel):
                    self.paths[rel] = False


# ---------------------------------------------------------------- performing a stage


def copy_flags(instr: Instr) -> tuple[dict[str, str], list[str]]:
    words = exec_form(instr.args)
    if words is None:
        words = shlex.split(instr.args)
    flags: dict[str, str] = {}
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        if key not in ("from", "chown", "chmod", "link"):
            raise RecipeError(f"{instr.where()}: COPY --{key} is not understood by this check")
        flags[key] = value
    if len(words) < 2:
        raise RecipeError(f"{instr.where()}: COPY needs a source and a destination")
    return flags, words


def rootfs_path(rootfs: Path, path: str) -> Path:
    return rootfs / posixpath.normpath(path).lstrip("/")


def copy_entry(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_symlink():
        if dst.is_symlink() or dst.exists():
            dst.unlink()
        dst.symlink_to(os.readlink(src))
    else:
        # copy2 keeps the modification time, as COPY does; cargo's freshness checks see
        # the same times in the check as in an image build.
        shutil.copy2(src, dst)


def perform_copy(df: Dockerfile, instr: Instr, state: StageState, rootfs: Path,
                 context: Context, built: dict[int, Path], env: dict[str, str]) -> int:
    flags, words = copy_flags(instr)
    sources = [expand(w, env) for w in words[:-1]]
    dest = expand(words[-1], env)
    if not dest.startswith("/"):
        dest = posixpath.join(state.workdir, dest) + ("/" if dest.endswith("/") else "")
    into_dir = dest.endswith("/") or len(sources) > 1
    count = 0
    if "from" in flags:
        stage = df.stage(flags["from"])
        assert stage is not None
        source_root = built[stage.index]
        for source in sources:
            src = rootfs_path(source_root, source)
            if not src.exists():
                raise RecipeError(f"{instr.where()}: {source} does not exist in stage "
                                  f"{stage.label()} after its steps")
            count += copy_tree_or_file(src, rootfs_path(rootfs, dest), into_dir)
        return count
    for source in sources:
        rel = posixpath.normpath(source).lstrip("/") or "."
        if has_wildcard(rel):
            regex = compile_pattern(rel)
            matches = [p for p in context.paths if regex.match(p)]
        elif rel == "." or rel in context.paths:
            matches = [rel]
        else:
            matches = []
        if not matches:
            raise RecipeError(
                f"{instr.where()}: {source} is not in the build context (missing, or left "
                "out by .dockerignore); an image build fails here too")
        for match in matches:
            if match == "." or context.paths[match]:
                prefix = "" if match == "." else match + "/"
                target = rootfs_path(rootfs, dest)
                target.mkdir(parents=True, exist_ok=True)
                for rel_path, is_dir in context.paths.items():
                    if not rel_path.startswith(prefix):
                        continue
                    out = target / rel_path[len(prefix):]
                    if is_dir:
                        out.mkdir(parents=True, exist_ok=True)
                    else:
                        copy_entry(context.root / rel_path, out)
                        count += 1
            else:
                count += copy_tree_or_file(context.root / match, rootfs_path(rootfs, dest),
                                           into_dir)
    return count


def copy_tree_or_file(src: Path, dest: Path, into_dir: bool) -> int:
    if src.is_dir():
        shutil.copytree(src, dest, symlinks=True, dirs_exist_ok=True)
        return sum(len(files) for _, _, files in os.walk(dest))
    if into_dir or dest.is_dir():
        dest = dest / src.name
    copy_entry(src, dest)
    return 1


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
    ("chef cook", "The dependency step builds from recipe.json alone (dummy sources for the "
     "workspace's own targets): a dependency fails to build, Cargo.lock is out of date "
     "(--locked), or a build script needs a file the recipe does not carry."),
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
            "other preparation in the base image, or teach deploy/image_recipe.py")
    workdir = rootfs_path(rootfs, state.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    # Cargo's target directory is the build cache: what Docker keeps in the layer of the
    # dependency step, this check keeps between runs.
    target = workdir / "target"
    if not target.exists() and state.workdir != "/":
        (cache / "cargo-target").mkdir(parents=True, exist_ok=True)
        target.symlink_to(cache / "cargo-target")
    if words[:2] == ["cargo", "install"]:
        # A build tool's optimisation is not what this check is about, and unoptimised it
        # installs in about half the time.
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


def interpret(df: Dockerfile, stage: Stage, state: StageState, on_copy, on_run,
              on_other=None) -> None:
    """Goes through a stage's instructions, updating `state`; COPY and RUN are delegated."""
    args: dict[str, str] = {}
    for instr in stage.instrs:
        env = {**args, **state.env}
        kw = instr.keyword
        if kw == "ARG":
            args.update(parse_assignments(instr.args, df.global_args, allow_bare=True))
        elif kw == "ENV":
            state.env.update(parse_assignments(instr.args, env, allow_bare=False))
        elif kw == "WORKDIR":
            state.workdir = posixpath.join(state.workdir, expand(instr.args, env))
        elif kw == "USER":
            state.user = expand(instr.args, env)
        elif kw == "VOLUME":
            state.volumes += exec_form(instr.args) or expand(instr.args, env).split()
        elif kw == "EXPOSE":
            state.expose += expand(instr.args, env).split()
        elif kw in ("ENTRYPOINT", "CMD"):
            form = exec_form(instr.args)
            value = form if form is not None else ["/bin/sh", "-c", instr.args]
            if kw == "ENTRYPOINT":
                state.entrypoint, state.cmd = value, None
                state.entrypoint_shell_form = form is None
            else:
                state.cmd = value
        elif kw == "COPY":
            on_copy(instr, env)
        elif kw == "RUN":
            on_run(instr, {**args, **state.env})
        elif on_other is not None:
            on_other(instr)


def stage_state(df: Dockerfile, stage: Stage) -> StageState:
    """The state a stage ends with (its parents' first), without performing anything."""
    parent = df.parent(stage)
    state = stage_state(df, parent) if parent is not None else StageState()
    interpret(df, stage, state, lambda *_: None, lambda *_: None)
    return state


# ---------------------------------------------------------------- subcommands


def load(args: argparse.Namespace) -> tuple[Dockerfile, Path]:
    context = Path(args.context).resolve()
    return parse_dockerfile(context / args.dockerfile), context


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


def stage_dirs(df: Dockerfile, work: Path) -> dict[int, Path]:
    """The scratch directory of each build stage (as `build` names them)."""
    final = df.stages[-1]
    return {s.index: work / f"{s.index}-{s.label().replace(' ', '-')}"
            for s in stage_closure(df, final) if s is not final}


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

    limit = version(rust_version)
    newer = sorted(f"{packages[i]['name']} {packages[i]['version']} (rust-version "
                   f"{packages[i]['rust_version']})" for i in seen
                   if packages[i].get("rust_version")
                   and version(packages[i]["rust_version"]) > limit)
    if newer:
        raise RecipeError(f"crates the image compiles need a newer toolchain than "
                          f"{rust_version}: {', '.join(newer)}. Pick versions that "
                          "support it (cargo update -p NAME --precise V), or raise "
                          "rust-version and ARG RUST_VERSION together")
    declared = sum(1 for i in seen if packages[i].get("rust_version"))
    say(f"    {len(seen)} crates compiled into {args.bin} (in {builder.label()}); {declared} "
        f"declare a rust-version, none above the image's {rust_version}")


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
