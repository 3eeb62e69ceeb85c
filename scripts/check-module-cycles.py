#!/usr/bin/env python3
"""Reports import circles between the modules (files) of a Rust crate.

Usage: check-module-cycles.py SRC_DIR [SRC_DIR ...]   (e.g. `src`, `actors/src`)

For each crate root in SRC_DIR (lib.rs, main.rs) it walks the `mod` declarations to
find every module and the file that defines it, then draws an edge from file A to file
B whenever code in A names a path into B (`use crate::…`, `use super::…`, or a
`crate::…`/`super::…`/`self::…` path in code). A path is resolved to the deepest
module it names, so `crate::server::state::AppState` points at `server/state.rs`, and
an item re-exported by a parent points at the parent. Edges from a module to its own
descendants are left out: those are declarations and re-exports. Comments and string
literals are ignored.

It prints every cycle (each once, starting at its smallest file) and exits 1 if there
is any, 0 otherwise.
"""
import re
import sys
from pathlib import Path

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip(text):
    """The text with comments, string and char literals blanked (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    out.append("\n" if text[i] == "\n" else "")
                    i += 1
        elif (m := re.match(r'b?r(#*)"', text[i:])) and (i == 0 or not re.match(r"\w", text[i - 1])):
            end = '"' + m.group(1)
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'" and (m := re.match(r"'(\\.[^']*|[^\\'\n])'", text[i:])):
            out.append("' '")
            i += m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def matching_brace(text, open_at):
    depth = 0
    for k in range(open_at, len(text)):
        if text[k] == "{":
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    return len(text)


class Crate:
    def __init__(self, src):
        self.src = src
        self.file_of = {}  # module path (tuple) -> file
        self.inline = {}  # file -> [(start, end, relative module path)]
        self.code = {}  # file -> stripped text

    def load(self, root):
        self.walk(("crate",), root, root.parent)

    def walk(self, module, path, child_dir):
        if path in self.code:
            return
        self.file_of[module] = path
        code = strip(path.read_text())
        self.code[path] = code
        self.inline[path] = []
        self.declare(module, path, code, 0, len(code), (), child_dir)

    def declare(self, module, path, code, start, end, rel, child_dir):
        """Finds the `mod` items between start and end (skipping nested inline ones)."""
        pattern = re.compile(r"\bmod\s+(" + IDENT + r")\s*([;{])")
        pos = start
        while m := pattern.search(code, pos, end):
            name, kind = m.group(1), m.group(2)
            if kind == ";":
                base = child_dir / "/".join(rel)
                for candidate in (base / f"{name}.rs", base / name / "mod.rs"):
                    if candidate.exists():
                        sub_dir = candidate.parent if candidate.name == "mod.rs" else base / name
                        self.walk(module + rel + (name,), candidate, sub_dir)
                        break
                pos = m.end()
            else:
                close = matching_brace(code, m.end() - 1)
                inner = rel + (name,)
                self.file_of[module + inner] = path
                self.inline[path].append((m.end(), close, inner))
                self.declare(module, path, code, m.end(), close, inner, child_dir)
                pos = close + 1

    def module_at(self, path, offset):
        """The module (path tuple) that the code at `offset` of `path` is in."""
        base = next(k for k, v in self.file_of.items() if v == path and not self.is_inline(k))
        best = ()
        for start, end, rel in self.inline[path]:
            if start <= offset < end and len(rel) > len(best):
                best = rel
        return base + best

    def is_inline(self, module):
        parent = module[:-1]
        return parent in self.file_of and self.file_of[parent] == self.file_of[module] and len(module) > 1

    def resolve(self, here, segments):
        """The module a path names (its longest prefix that is a module), or None."""
        if segments[0] == "crate":
            absolute = ["crate"]
        elif segments[0] in ("super", "self"):
            absolute = list(here)
        else:
            return None
        rest = list(segments)
        if rest[0] == "crate":
            rest = rest[1:]
        while rest and rest[0] in ("super", "self"):
            if rest.pop(0) == "super":
                absolute.pop()
        absolute += rest
        for k in range(len(absolute), 0, -1):
            if tuple(absolute[:k]) in self.file_of:
                return tuple(absolute[:k])
        return None


def use_paths(tree):
    """Expands a use tree (`a::{b, c::{d as e}, self}`) into segment lists."""
    results = []

    def expand(prefix, t):
        parts, depth, cur = [], 0, ""
        for ch in t:
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
                continue
            depth += ch == "{"
            depth -= ch == "}"
            cur += ch
        parts.append(cur)
        for part in (p.strip() for p in parts):
            if not part:
                continue
            if "{" in part:
                head, inner = part.split("{", 1)
                expand(prefix + [s for s in head.split("::") if s], inner.rsplit("}", 1)[0])
                continue
            segs = [s for s in re.sub(r"\s+as\s+\w+$", "", part).split("::") if s]
            while segs and segs[-1] in ("self", "*"):
                segs.pop()
            results.append(prefix + segs)

    expand([], re.sub(r"\s*::\s*", "::", tree.strip()))
    return results


def references(crate, path):
    """(offset, segments) of every crate-internal path named in `path`."""
    code = crate.code[path]
    refs = []
    for m in re.finditer(r"\buse\s+((?:crate|super|self)\b[^;]*);", code):
        for segs in use_paths(m.group(1)):
            refs.append((m.start(), segs))
    blanked = re.sub(r"\buse\s+[^;]*;", lambda m: " " * len(m.group(0)), code)
    for m in re.finditer(r"\b(crate|super|self)((?:\s*::\s*" + IDENT + r")+)", blanked):
        segs = [m.group(1)] + [s.strip() for s in m.group(2).split("::") if s.strip()]
        refs.append((m.start(), segs))
    return refs


def graph(crate):
    edges = {}
    for path in crate.code:
        for offset, segs in references(crate, path):
            here = crate.module_at(path, offset)
            target = crate.resolve(here, segs)
            if target is None:
                continue
            to = crate.file_of[target]
            source = next(k for k, v in crate.file_of.items() if v == path and not crate.is_inline(k))
            if to == path or target[: len(source)] == source:
                continue
            edges.setdefault(path, set()).add(to)
    return edges


def cycles(edges):
    """Every elementary cycle, each starting at its smallest node."""
    nodes = sorted(set(edges) | {t for ts in edges.values() for t in ts})
    found = []
    for start in nodes:
        stack = [(start, iter(sorted(edges.get(start, ()))))]
        on_path = [start]
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                on_path.pop()
            elif nxt == start:
                found.append(list(on_path))
            elif nxt > start and nxt not in on_path:
                on_path.append(nxt)
                stack.append((nxt, iter(sorted(edges.get(nxt, ())))))
    return found


def main(dirs):
    if not dirs:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    any_cycle = False
    for d in dirs:
        src = Path(d)
        roots = [src / r for r in ("lib.rs", "main.rs") if (src / r).exists()]
        if not roots:
            print(f"{src}: no lib.rs or main.rs", file=sys.stderr)
            return 2
        for root in roots:
            crate = Crate(src)
            crate.load(root)
            found = cycles(graph(crate))
            if found:
                any_cycle = True
                print(f"{root}: {len(found)} import cycle(s)")
                for c in found:
                    print("  " + " -> ".join(str(p) for p in c + [c[0]]))
            else:
                print(f"{root}: no import cycle ({len(crate.code)} files)")
    return 1 if any_cycle else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
