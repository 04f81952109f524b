#!/usr/bin/env python3
"""Check the MSRV claim without installing that toolchain.

What this proves is what the dependencies *declare*, not a build with Rust
1.85 (none can be installed here; clippy's `incompatible_msrv` lint, run by
.ci/run, covers the crate's own use of std). It fails if any normal or build
dependency (dev-dependencies do not count: they never reach a user) needs a
newer Rust than the crate's own `rust-version`, where "needs" is:
  - its declared `rust-version`, if it declares one;
  - else the first Rust of its edition (2015: 1.0, 2018: 1.31, 2021: 1.56,
    2024: 1.85): a floor, not a proof; such dependencies are listed by name.
Both are checked:
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


# The first Rust that builds each edition: all that is known of a dependency
# that declares no rust-version.
EDITION_RUST = {"2015": "1.0", "2018": "1.31", "2021": "1.56", "2024": "1.85"}


def needs(package):
    """(what the package needs, whether it declared it)."""
    declared = package.get("rust_version")
    if declared:
        return version(declared), True
    edition = package.get("edition", "2015")
    # An edition newer than this table needs a Rust newer than any we know.
    return version(EDITION_RUST.get(edition, "999")), False


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
    bad, undeclared = [], []
    for pkg in sorted(seen):
        need, declared = needs(packages[pkg])
        name = f'{packages[pkg]["name"]} {packages[pkg]["version"]}'
        if not declared:
            undeclared.append(f'{name} (edition {packages[pkg].get("edition", "2015")})')
        if need > ours:
            how = "declares" if declared else "by its edition needs"
            bad.append((f'{name} {how} Rust {".".join(map(str, need))}', need))
    too_new.undeclared = undeclared
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
    print(f"  of which {len(too_new.undeclared)} declare no rust-version and are checked by "
          "their edition only: " + ", ".join(too_new.undeclared))
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
