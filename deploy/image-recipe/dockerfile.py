"""The Dockerfile as stages of instructions, and what a stage's instructions set."""

from __future__ import annotations

import argparse
import json
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


KNOWN = {
    "ARG", "FROM", "WORKDIR", "ENV", "COPY", "RUN", "USER", "EXPOSE", "VOLUME",
    "ENTRYPOINT", "CMD", "LABEL", "STOPSIGNAL", "HEALTHCHECK",
}


class RecipeError(Exception):
    """A recipe problem, said in terms of the Dockerfile line and what to do."""


def say(msg: str) -> None:
    print(msg, flush=True)


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
                              "teach deploy/image-recipe/ what it means outside a container")
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


def interpret(df: Dockerfile, stage: Stage, state: StageState, on_copy, on_run) -> None:
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


def stage_state(df: Dockerfile, stage: Stage) -> StageState:
    """The state a stage ends with (its parents' first), without performing anything."""
    parent = df.parent(stage)
    state = stage_state(df, parent) if parent is not None else StageState()
    interpret(df, stage, state, lambda *_: None, lambda *_: None)
    return state


def stage_dirs(df: Dockerfile, work: Path) -> dict[int, Path]:
    """The scratch directory of each build stage (as `build` names them)."""
    final = df.stages[-1]
    return {s.index: work / f"{s.index}-{s.label().replace(' ', '-')}"
            for s in stage_closure(df, final) if s is not final}


def load(args: argparse.Namespace) -> tuple[Dockerfile, Path]:
    context = Path(args.context).resolve()
    return parse_dockerfile(context / args.dockerfile), context
