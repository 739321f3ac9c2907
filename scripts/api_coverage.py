#!/usr/bin/env python3
"""Driver-API coverage of rgpu's client library, from the built library itself.

Usage: api_coverage.py LIBCUDA EXPORTS_TXT [--markdown | --update-doc DOC | --check-doc DOC]

A name rgpu implements is a strong (T) definition in libcuda.so.1; a name it
only exports is a weak (W) stub that returns CUDA_ERROR_NOT_SUPPORTED and logs
its name once. Prints "implemented / total" and, with --markdown, the lists.
"""
import subprocess
import sys


def main():
    lib, exports = sys.argv[1], sys.argv[2]
    markdown = "--markdown" in sys.argv
    names = [l.strip() for l in open(exports) if l.strip()]
    out = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True, check=True).stdout
    kind = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            kind[parts[2]] = parts[1]
    implemented = sorted(n for n in names if kind.get(n) == "T")
    stubs = sorted(n for n in names if kind.get(n) == "W")
    missing = sorted(n for n in names if n not in kind)
    print(f"implemented {len(implemented)} / {len(names)} exported driver functions"
          f" ({len(stubs)} refuse with CUDA_ERROR_NOT_SUPPORTED, {len(missing)} missing)")
    block = "\n".join([
        f"**{len(implemented)} of {len(names)}** exported driver functions are implemented; "
        f"{len(stubs)} are exported and refuse with `CUDA_ERROR_NOT_SUPPORTED` (logged once by name).",
        "", "Implemented:", "", ", ".join(f"`{n}`" for n in implemented), "",
        "Exported but refused:", "", ", ".join(f"`{n}`" for n in stubs)])
    if markdown:
        print(block)
    for flag in ("--update-doc", "--check-doc"):
        if flag in sys.argv:
            doc = sys.argv[sys.argv.index(flag) + 1]
            text = open(doc).read()
            begin, end = "<!-- coverage:begin -->", "<!-- coverage:end -->"
            if begin not in text or end not in text:
                print(f"{doc}: coverage markers missing", file=sys.stderr)
                return 1
            head, rest = text.split(begin, 1)
            _, tail = rest.split(end, 1)
            new = head + begin + "\n" + block + "\n" + end + tail
            if flag == "--update-doc":
                open(doc, "w").write(new)
            elif new != text:
                print(f"{doc}: coverage section is out of date; run scripts/api_coverage.py "
                      f"build/lib/libcuda.so.1 data/driver/libcuda-580.159-exports.txt --update-doc {doc}",
                      file=sys.stderr)
                return 1
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
