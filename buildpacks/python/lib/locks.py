"""poetry.lock and uv.lock as pip requirements: neither poetry nor uv is on the stack (and no
package index outside the app's is reachable to fetch them), so the buildpack reads the lock itself
and pip installs exactly what it pins, with --no-deps, from the app's PIP_INDEX_URL.

What is installed: the main dependencies of the app (poetry: [tool.poetry.dependencies] or
[project].dependencies; uv: the dependencies of the project's own package), followed through the
lock with their extras; no dev groups and not the app itself (it runs from /app). Each line is
`name==version` with every `--hash` the lock records, and the markers of the edges that led to it,
so pip skips what does not apply to the stack. A package from git, a path or a URL has no hash pip
could check: then no line has one (pip's hash mode is all or nothing) and a warning says so.
Standard library only (tomllib: Python 3.11+, the stack's).
"""
import re
import tomllib

# Conditions (sets of markers, all of which hold) kept per package before it counts as unconditional.
MAX_ALTERNATIVES = 6


class LockError(Exception):
    """The lock cannot be turned into requirements; the message is the build's one-line failure."""


def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def load_toml(path, what):
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError:
        return None
    except tomllib.TOMLDecodeError as err:
        raise LockError("%s is not valid TOML: %s" % (what, err)) from err


class Package:
    """A locked package: its pinned requirement (without hashes), hashes, and dependency edges."""

    def __init__(self, name, requirement, hashes, deps, extras):
        self.name = name
        self.requirement = requirement  # None: not installed itself (the app's own project)
        self.hashes = hashes
        self.deps = deps  # [(name, marker or None, [extras])]
        self.extras = extras  # {extra: [(name, marker, [extras])]}


# --- PEP 508 strings (pyproject's [project].dependencies, poetry's extras lists) ---------------------

REQ_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?[^;]*(?:;\s*(.+))?$")


def parse_requirement(text):
    m = REQ_RE.match(text)
    if not m:
        return None
    extras = [e.strip() for e in (m.group(2) or "").split(",") if e.strip()]
    return norm(m.group(1)), (m.group(3) or "").strip() or None, extras


def relative(path):
    return path if path.startswith(("/", "./", "../")) else "./" + path


# --- poetry.lock ---------------------------------------------------------------------------------------


def poetry_source_requirement(name, version, source):
    kind = source.get("type")
    url = source.get("url", "")
    if kind == "git":
        ref = source.get("resolved_reference") or source.get("reference") or ""
        sub = "#subdirectory=" + source["subdirectory"] if source.get("subdirectory") else ""
        return "%s @ git+%s%s%s" % (name, url, "@" + ref if ref else "", sub)
    if kind == "directory":
        return ("-e " if source.get("develop") else "") + relative(url)
    if kind == "file":
        return relative(url)
    if kind == "url":
        return "%s @ %s" % (name, url)
    return "%s==%s" % (name, version)  # the index (pypi, or a "legacy" one: PIP_INDEX_URL says where)


def poetry_edges(deps):
    """[package.dependencies] / [tool.poetry.dependencies] as edges; optional ones come with extras only."""
    edges = []
    for dep, spec in (deps or {}).items():
        if norm(dep) == "python":
            continue
        for s in spec if isinstance(spec, list) else [spec]:
            if isinstance(s, dict):
                if s.get("optional"):
                    continue
                edges.append((norm(dep), s.get("markers"), list(s.get("extras", []))))
            else:
                edges.append((norm(dep), None, []))
    return edges


def poetry_packages(lock):
    files_by_name = {norm(k): v for k, v in lock.get("metadata", {}).get("files", {}).items()}  # lock-version 1.x
    packages = {}
    for p in lock.get("package", []):
        name = norm(p["name"])
        files = p.get("files") or files_by_name.get(name) or []
        extras = {}
        for extra, reqs in (p.get("extras") or {}).items():
            extras[extra] = [r for r in (parse_requirement(x) for x in reqs) if r]
        packages[name] = Package(
            name,
            poetry_source_requirement(name, p.get("version", ""), p.get("source") or {}),
            [f["hash"] for f in files if f.get("hash")],
            poetry_edges(p.get("dependencies")),
            extras,
        )
    return packages


def poetry_roots(pyproject):
    """The app's main dependencies, from [tool.poetry.dependencies] and PEP 621 [project].dependencies."""
    roots = poetry_edges(pyproject.get("tool", {}).get("poetry", {}).get("dependencies"))
    roots += [r for r in (parse_requirement(x) for x in pyproject.get("project", {}).get("dependencies", [])) if r]
    return roots


def poetry_requirements(directory):
    lock = load_toml(directory + "/poetry.lock", "poetry.lock") or {}
    pyproject = load_toml(directory + "/pyproject.toml", "pyproject.toml") or {}
    packages = poetry_packages(lock)
    roots = poetry_roots(pyproject)
    for name, _, _ in roots:
        if name not in packages:
            raise LockError("pyproject.toml lists %s, which poetry.lock does not lock: run `poetry lock` and commit poetry.lock" % name)
    return requirements(packages, roots, "poetry.lock")


# --- uv.lock -------------------------------------------------------------------------------------------


def uv_edges(deps):
    return [(norm(d["name"]), d.get("marker"), list(d.get("extra", []))) for d in deps or []]


def uv_source_requirement(name, version, source):
    if "git" in source:
        url, _, commit = source["git"].partition("#")
        base, _, query = url.partition("?")
        sub = re.search(r"(?:^|&)subdirectory=([^&]+)", query)
        return "%s @ git+%s%s%s" % (name, base, "@" + commit if commit else "", "#subdirectory=" + sub.group(1) if sub else "")
    if "url" in source:
        return "%s @ %s" % (name, source["url"])
    if "editable" in source:
        return "-e " + relative(source["editable"])
    if "path" in source or "directory" in source:
        return relative(source.get("path") or source.get("directory"))
    return "%s==%s" % (name, version)  # a registry: the app's PIP_INDEX_URL says where


def uv_requirements(directory):
    lock = load_toml(directory + "/uv.lock", "uv.lock") or {}
    pyproject = load_toml(directory + "/pyproject.toml", "pyproject.toml") or {}
    members = {norm(m) for m in lock.get("manifest", {}).get("members", [])}
    packages = {}
    roots = []
    for p in lock.get("package", []):
        name = norm(p["name"])
        source = p.get("source") or {}
        hashes = [w["hash"] for w in p.get("wheels", []) if w.get("hash")]
        if (p.get("sdist") or {}).get("hash"):
            hashes.append(p["sdist"]["hash"])
        extras = {e: uv_edges(d) for e, d in (p.get("optional-dependencies") or {}).items()}
        # The app's own project (the package at "." or a workspace member) is not installed: its dependencies are.
        own = source.get("virtual") == "." or source.get("editable") == "." or name in members
        packages[name] = Package(name, None if own else uv_source_requirement(name, p.get("version", ""), source), hashes, uv_edges(p.get("dependencies")), extras)
        if own:
            roots.append((name, None, []))
    if not roots:
        raise LockError("uv.lock has no package for the project itself (source virtual or editable \".\"): run `uv lock` and commit uv.lock")
    wanted = [r for r in (parse_requirement(x) for x in pyproject.get("project", {}).get("dependencies", [])) if r]
    locked = {d[0] for r in roots for d in packages[r[0]].deps}
    for name, _, _ in wanted:
        if name not in locked:
            raise LockError("uv.lock is out of date: pyproject.toml lists %s, which it does not lock: run `uv lock` and commit uv.lock" % name)
    return requirements(packages, roots, "uv.lock")


# --- the walk ------------------------------------------------------------------------------------------


def marker_of(alternatives):
    """One PEP 508 marker for "any of these sets of markers all hold"."""
    group = lambda items, op: items[0] if len(items) == 1 else (" %s " % op).join("(%s)" % i for i in items)
    return group([group(sorted(c), "and") for c in sorted(alternatives, key=sorted)], "or")


def requirements(packages, roots, lock_name):
    """(requirement lines, warnings): every package the roots reach, with the markers that lead to it."""
    conditions = {}  # (name, extra or None) -> set of frozensets of markers; frozenset() = always

    def visit(name, extra, cond, parent):
        if name not in packages:
            raise LockError("%s needs %s, which %s does not lock: the lock is out of date" % (parent, name, lock_name))
        key = (name, extra)
        current = conditions.setdefault(key, set())
        if any(c <= cond for c in current):
            return  # reached already under a weaker condition
        current = {c for c in current if not cond <= c} | {cond}
        if len(current) > MAX_ALTERNATIVES:
            cond, current = frozenset(), {frozenset()}  # installing it always beats missing it
        conditions[key] = current
        pkg = packages[name]
        if extra is not None:
            visit(name, None, cond, parent)
        for dep, marker, extras in pkg.extras.get(extra, []) if extra is not None else pkg.deps:
            c = cond | {marker} if marker else cond
            visit(dep, None, c, name)
            for e in extras:
                visit(dep, e, c, name)

    for name, marker, extras in roots:
        cond = frozenset([marker]) if marker else frozenset()
        visit(name, None, cond, "the app")
        for e in extras:
            visit(name, e, cond, "the app")

    chosen = sorted(n for (n, extra) in conditions if extra is None and packages[n].requirement is not None)
    unhashed = [n for n in chosen if not packages[n].hashes]
    warnings = []
    if unhashed:
        warnings.append("%s records no hash for %s: pip installs the lock without checking hashes" % (lock_name, ", ".join(unhashed)))
    lines = []
    for n in chosen:
        alts = conditions[(n, None)]
        line = packages[n].requirement
        if frozenset() not in alts:
            line += " ; " + marker_of(alts)
        if not unhashed:
            line += "".join(" --hash=%s" % h for h in packages[n].hashes)
        lines.append(line)
    return lines, warnings
