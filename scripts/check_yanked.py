#!/usr/bin/env python3
"""Is any crate in Cargo.lock yanked on crates.io? Reads the sparse index (the one registry
this project's machines reach), in parallel. Exit 1 naming the yanked versions, 0 if none,
2 if the index cannot be read. `cargo deny check advisories` checks this too, but needs the
RustSec database from GitHub; this one needs only crates.io."""
import concurrent.futures
import json
import sys
import tomllib
import urllib.request

INDEX = "https://index.crates.io"


def path(name: str) -> str:
    n = name.lower()
    if len(n) <= 2:
        return f"{len(n)}/{n}"
    if len(n) == 3:
        return f"3/{n[0]}/{n}"
    return f"{n[:2]}/{n[2:4]}/{n}"


def yanked(pkg):
    name, version = pkg
    with urllib.request.urlopen(f"{INDEX}/{path(name)}", timeout=20) as r:
        for line in r.read().decode().splitlines():
            entry = json.loads(line)
            if entry["vers"] == version:
                return entry.get("yanked", False)
    raise LookupError(f"{name} {version} is not in the index")


def main() -> int:
    lock = tomllib.load(open(sys.argv[1] if len(sys.argv) > 1 else "Cargo.lock", "rb"))
    pkgs = sorted(
        {(p["name"], p["version"]) for p in lock["package"] if "registry+" in p.get("source", "")}
    )
    try:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            flags = list(pool.map(yanked, pkgs))
    except Exception as e:  # noqa: BLE001 - any failure to read the index is exit 2
        print(f"check_yanked: cannot read the crates.io index: {e}", file=sys.stderr)
        return 2
    bad = [f"{n} {v}" for (n, v), y in zip(pkgs, flags) if y]
    for b in bad:
        print(f"yanked: {b}")
    print(f"check_yanked: {len(pkgs)} crates from crates.io, {len(bad)} yanked")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
