"""The build context (what .dockerignore leaves) and COPY into a scratch root."""

from __future__ import annotations

import os
import posixpath
import re
import shutil
from pathlib import Path

from dockerfile import Dockerfile, Instr, RecipeError, StageState, copy_flags, expand


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
