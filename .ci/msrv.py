#!/usr/bin/env python3
"""Prove the MSRV without installing that toolchain.

Fails if any normal or build dependency (dev-dependencies do not count: they
never reach a user) declares a `rust-version` above the crate's own:
  1. in the committed Cargo.lock, all features on (`--locked`);
  2. in a fresh MSRV-aware resolution (resolver 3, `fallback`) of a copy of the
     manifest, all features on: what a user who adds the crate today gets.
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


def too_new(cwd, locked):
    args = ["cargo", "metadata", "--format-version", "1", "--all-features"]
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
            bad.append(f'{packages[pkg]["name"]} {packages[pkg]["version"]} needs Rust {declared}')
    return packages[root]["rust_version"], len(seen), bad


def main():
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    failed = False
    msrv, count, bad = too_new(top, locked=True)
    print(f"committed Cargo.lock: {count} normal/build dependencies, MSRV {msrv}: "
          + ("ok" if not bad else "TOO NEW: " + "; ".join(bad)))
    failed |= bool(bad)
    with tempfile.TemporaryDirectory() as tmp:
        for name in ["Cargo.toml", "README.md"]:
            shutil.copy(os.path.join(top, name), tmp)
        for folder in ["src", "benches", "examples", "tests"]:
            shutil.copytree(os.path.join(top, folder), os.path.join(tmp, folder))
        env = dict(os.environ, CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS="fallback")
        subprocess.run(["cargo", "generate-lockfile", "--quiet"], cwd=tmp, env=env, check=True)
        msrv, count, bad = too_new(tmp, locked=False)
        print(f"fresh MSRV-aware resolution: {count} normal/build dependencies, MSRV {msrv}: "
              + ("ok" if not bad else "TOO NEW: " + "; ".join(bad)))
        failed |= bool(bad)
    if failed:
        print("a dependency needs a newer Rust than rust-version in Cargo.toml: raise the MSRV, "
              "or pin the dependency lower", file=sys.stderr)
        sys.exit(1)


main()
