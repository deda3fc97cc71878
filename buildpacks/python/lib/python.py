"""What the Python buildpack cannot do in sh: read runtime.txt/.python-version, the lock files
(Pipfile.lock here, poetry.lock and uv.lock in locks.py) and manage.py, make the cache key, and work
out the default process types. Standard library only, run by the stack's python3.

    python.py facts DIR                       sh assignments (eval'd by bin/compile)
    python.py cache-key DIR                   one line: what the cached virtualenv was built from
    python.py pipfile-requirements DIR        Pipfile.lock's default packages as requirements lines
    python.py lock-requirements DIR KIND OUT  poetry.lock or uv.lock (KIND poetry|uv) as pinned
                                              requirements in OUT; warnings on stdout; on failure
                                              exit 1 with the reason as the last line
    python.py release DIR                     bin/release's YAML
"""
import hashlib
import json
import os
import re
import shlex
import sys

import locks

PY = "%d.%d.%d" % sys.version_info[:3]
DEP_FILES = ("requirements.txt", "Pipfile.lock", "Pipfile", "uv.lock", "poetry.lock", "pyproject.toml", "setup.py", "setup.cfg")


def read(directory, name):
    try:
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def wanted_version(directory):
    """(version, file) the app asks for, e.g. ("3.12.1", "runtime.txt"), or ("", "")."""
    for name in ("runtime.txt", ".python-version"):
        text = read(directory, name)
        if text is None:
            continue
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                return re.sub(r"^python-", "", line), name
    return "", ""


def version_rc(wanted):
    """0: the stack's Python fits; 1: another minor (a warning); 2: another major or unreadable (an error)."""
    m = re.match(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?$", wanted)
    if not m:
        return 2
    have = sys.version_info[:3]
    parts = [int(p) for p in m.groups() if p is not None]
    if parts[0] != have[0]:
        return 2
    return 0 if tuple(parts[:2]) == tuple(have[: len(parts[:2])]) else 1


def is_poetry_project(directory):
    text = read(directory, "pyproject.toml") or ""
    return re.search(r"^\[tool\.poetry[\].]", text, re.M) is not None


def install_kind(directory):
    """How the app's dependencies are installed: requirements, uv, poetry, pipfile, project, empty (a
    requirements.txt listing nothing), poetry-unlocked (a Poetry project without poetry.lock) or none."""
    text = read(directory, "requirements.txt")
    if text is not None:
        listed = [l for l in text.splitlines() if l.split("#", 1)[0].strip()]
        return "requirements" if listed else "empty"
    has = lambda name: os.path.isfile(os.path.join(directory, name))
    if has("uv.lock"):
        return "uv"
    if has("poetry.lock"):
        return "poetry"
    if has("Pipfile"):
        return "pipfile"
    if has("pyproject.toml") and is_poetry_project(directory):
        return "poetry-unlocked"
    for name in ("pyproject.toml", "setup.py"):
        if os.path.isfile(os.path.join(directory, name)):
            return "project"
    return "none"


def facts(directory):
    wanted, source = wanted_version(directory)
    out = {
        "python_version": PY,
        "wanted": wanted,
        "wanted_from": source,
        "wanted_rc": str(version_rc(wanted)) if wanted else "0",
        "install": install_kind(directory),
        "has_lock": "1" if os.path.isfile(os.path.join(directory, "Pipfile.lock")) else "0",
    }
    print("\n".join("%s=%s" % (k, shlex.quote(v)) for k, v in out.items()))


def cache_key(directory):
    h = hashlib.sha256()
    h.update(("%s %s %s\n" % (PY, os.environ.get("STACK", ""), sys.platform)).encode())
    for name in DEP_FILES:
        text = read(directory, name)
        if text is not None:
            h.update(("%s\0%s\0" % (name, text)).encode())
    print(h.hexdigest())


def pipfile_requirements(directory):
    """Pipfile.lock's "default" section as pinned requirements (pipenv is not on the stack)."""
    lock = json.loads(read(directory, "Pipfile.lock") or "{}")
    for name, spec in sorted(lock.get("default", {}).items()):
        if not isinstance(spec, dict):
            continue
        if "git" in spec:
            ref = "@" + spec["ref"] if spec.get("ref") else ""
            print("%s @ git+%s%s" % (name, spec["git"], ref))
        elif "path" in spec or "file" in spec:
            print(spec.get("path") or spec.get("file"))
        else:
            marker = "; " + spec["markers"] if spec.get("markers") else ""
            print("%s%s%s" % (name, spec.get("version", ""), marker))


def lock_requirements(directory, kind, out):
    try:
        lines, warnings = (locks.uv_requirements if kind == "uv" else locks.poetry_requirements)(directory)
    except locks.LockError as err:
        print(err)
        sys.exit(1)
    with open(out, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    for w in warnings:
        print(w)


def django_project(directory):
    """The Django project package manage.py names in DJANGO_SETTINGS_MODULE (mysite.settings -> mysite)."""
    text = read(directory, "manage.py") or ""
    m = re.search(r"DJANGO_SETTINGS_MODULE['\"]\s*,\s*['\"]([\w.]+)['\"]", text)
    if not m:
        return None
    return m.group(1).rsplit(".", 1)[0] if "." in m.group(1) else None


def default_web(directory):
    """gunicorn's command when the app installed gunicorn and it can tell which WSGI app to serve."""
    if not os.path.exists(os.path.join(directory, ".venv", "bin", "gunicorn")):
        return None
    bind = "--bind 0.0.0.0:$PORT"
    if os.path.isfile(os.path.join(directory, "manage.py")):
        project = django_project(directory)
        return "gunicorn %s.wsgi %s" % (project, bind) if project else None
    if os.path.isfile(os.path.join(directory, "wsgi.py")):
        return "gunicorn wsgi %s" % bind
    for name in ("app", "main"):
        if os.path.isfile(os.path.join(directory, name + ".py")):
            return "gunicorn %s:app %s" % (name, bind)
    return None


def release(directory):
    web = default_web(directory)
    if web is None:
        print("default_process_types: {}")
    else:
        print("default_process_types:\n  web: %s" % json.dumps(web))


def main():
    commands = {"facts": facts, "cache-key": cache_key, "pipfile-requirements": pipfile_requirements, "release": release}
    if len(sys.argv) == 5 and sys.argv[1] == "lock-requirements":
        return lock_requirements(*sys.argv[2:])
    if len(sys.argv) != 3 or sys.argv[1] not in commands:
        sys.exit("usage: python.py facts|cache-key|pipfile-requirements|release DIR, or lock-requirements DIR poetry|uv OUT")
    commands[sys.argv[1]](sys.argv[2])


if __name__ == "__main__":
    main()
