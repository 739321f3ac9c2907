"""Pieces shared by the build-time code generators (client/gen, nvml/gen, proto/gen).

A generator imports this with:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
    import gen_common
and lists scripts/gen_common.py among its custom command's DEPENDS.
"""
import os
import sys


def fail(prog, msg):
    """Reports `msg` as `prog: msg` on stderr and exits 1 (generators never half-succeed)."""
    sys.stderr.write("%s: %s\n" % (prog, msg))
    sys.exit(1)


def read_name_list(path, name_re, what, prog):
    """Reads a checked-in export list: one symbol a line, '#' comments and blank
    lines skipped. Every name must match `name_re` and appear once."""
    names = []
    for lineno, line in enumerate(open(path), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not name_re.match(line):
            fail(prog, "%s:%d: not %s: %r" % (path, lineno, what, line))
        names.append(line)
    if len(set(names)) != len(names):
        fail(prog, "%s: duplicate names" % path)
    return names


def write_if_changed(path, text):
    """Writes atomically, and only when the text differs, so that an unchanged
    output keeps its timestamp and nothing downstream is rebuilt."""
    if os.path.exists(path) and open(path).read() == text:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
