"""Print a pip requirements file (exact versions, hashes) for this interpreter from poetry.lock.

poetry.lock stays the only list of versions: on machines where Poetry cannot reach its default
source, the install scripts feed this output to `pip install --require-hashes`.
Usage: python requirements_from_lock.py LOCKFILE [GROUP ...]   (default groups: main dev)
"""

import sys
import tomllib

try:
    from packaging.markers import Marker
except ImportError:  # a bare venv: pip vendors packaging
    from pip._vendor.packaging.markers import Marker


# Markers are evaluated for this interpreter and no extra: the lock marks what only the `dev` extra
# needs with `extra == "dev"` (dev tools come from the dev group instead). The value must be given:
# the packaging that old pips vendor (pip 23.2 with Python 3.11.7) raises when `extra` is undefined.
NO_EXTRA = {"extra": ""}


def wanted(package: dict[str, object], groups: set[str]) -> bool:
    package_groups = set(package.get("groups", ["main"]))  # type: ignore[call-overload]
    selected = package_groups & groups
    if not selected:
        return False
    markers = package.get("markers")
    if markers is None:
        return True
    if isinstance(markers, str):
        return Marker(markers).evaluate(NO_EXTRA)
    assert isinstance(markers, dict)
    # Per-group markers: a group without an entry has no condition.
    return any(Marker(markers[g]).evaluate(NO_EXTRA) if g in markers else True for g in selected)


def main() -> None:
    lock_path, *group_args = sys.argv[1:]
    groups = set(group_args or ["main", "dev"])
    with open(lock_path, "rb") as handle:
        lock = tomllib.load(handle)
    for package in lock["package"]:
        if not wanted(package, groups):
            continue
        hashes = " ".join(f"--hash={f['hash']}" for f in package.get("files", []))
        print(f"{package['name']}=={package['version']} {hashes}".rstrip())


if __name__ == "__main__":
    main()
