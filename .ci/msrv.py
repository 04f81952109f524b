#!/usr/bin/env python3
"""Prove the MSRV without installing that toolchain.

Fails if any normal or build dependency (dev-dependencies do not count: they
never reach a user) declares a `rust-version` above the crate's own:
  1. in the committed Cargo.lock, all features on (`--locked`);
  2. in a fresh MSRV-aware resolution (resolver 3, `fallback`) of a copy of the
     manifest, all features on: what a user who adds the crate today gets.

One documented exception: feature `hickory-dns` forwards reqwest's, whose
hickory-resolver 0.26 needs Rust 1.88. It is checked on its own: what it needs
must be exactly what Cargo.toml and the README say, so that the words stay true.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile


def version(text):
    parts = (text.split(".") + ["0", "0"])[:3]
    return tuple(int(p) for p in parts)


# Features whose dependencies need a newer Rust than the crate, and what they need
# (as documented beside them in Cargo.toml and in the README).
EXCEPTIONS = {"hickory-dns": "1.88"}


def features(cwd):
    args = ["cargo", "metadata", "--format-version", "1", "--no-deps"]
    meta = json.loads(subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=True).stdout)
    return sorted(meta["packages"][0]["features"])


def too_new(cwd, locked, with_exception=None):
    chosen = [f for f in features(cwd) if f not in EXCEPTIONS or f == with_exception]
    args = ["cargo", "metadata", "--format-version", "1", "--features", ",".join(chosen)]
    if locked:
        args.append("--locked")
    meta = json.loads(subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=True).stdout)
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    root = meta["resolve"]["root"]
    ours = version(packages[root]["rust_version"])
    seen, stack = set(), [root]
    while stack:
        for dep in nodes[stack.pop()]["deps"]:
            if all(k["kind"] == "dev" for k in dep["dep_kinds"]) or dep["pkg"] in seen:
                continue
            seen.add(dep["pkg"])
            stack.append(dep["pkg"])
    bad = []
    for pkg in sorted(seen):
        declared = packages[pkg].get("rust_version")
        if declared and version(declared) > ours:
            bad.append((f'{packages[pkg]["name"]} {packages[pkg]["version"]} needs Rust {declared}',
                        version(declared)))
    return packages[root]["rust_version"], len(seen), bad


def check_exceptions(cwd, where):
    """Each exception needs exactly the Rust it is documented to need."""
    failed = False
    for feature, documented in EXCEPTIONS.items():
        _, _, bad = too_new(cwd, locked=where == "committed", with_exception=feature)
        needed = max((v for _, v in bad), default=None)
        ok = needed == version(documented)
        print(f"{where}: feature {feature} needs Rust "
              + (".".join(map(str, needed)) if needed else "no more than the MSRV")
              + f", documented {documented}: " + ("ok" if ok else "MISMATCH"))
        failed |= not ok
    return failed


def main():
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    failed = False
    msrv, count, bad = too_new(top, locked=True)
    print("all features but " + ", ".join(EXCEPTIONS))
    print(f"committed Cargo.lock: {count} normal/build dependencies, MSRV {msrv}: "
          + ("ok" if not bad else "TOO NEW: " + "; ".join(b for b, _ in bad)))
    failed |= bool(bad)
    failed |= check_exceptions(top, "committed")
    with tempfile.TemporaryDirectory() as tmp:
        for name in ["Cargo.toml", "README.md"]:
            shutil.copy(os.path.join(top, name), tmp)
        for folder in ["src", "benches", "examples", "tests", "docs"]:
            shutil.copytree(os.path.join(top, folder), os.path.join(tmp, folder))
        env = dict(os.environ, CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS="fallback")
        subprocess.run(["cargo", "generate-lockfile", "--quiet"], cwd=tmp, env=env, check=True)
        msrv, count, bad = too_new(tmp, locked=False)
        print(f"fresh MSRV-aware resolution: {count} normal/build dependencies, MSRV {msrv}: "
              + ("ok" if not bad else "TOO NEW: " + "; ".join(b for b, _ in bad)))
        failed |= bool(bad)
        failed |= check_exceptions(tmp, "fresh")
    if failed:
        print("a dependency needs a newer Rust than rust-version in Cargo.toml: raise the MSRV, "
              "or pin the dependency lower", file=sys.stderr)
        sys.exit(1)


main()
