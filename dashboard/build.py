"""Builds the dashboard: `dashboard/src/` → `dashboard/dist/` with content-hashed assets.

`python dashboard/build.py` (what `make dashboard` runs). Every `.js` and `.css` file is
copied under a name carrying a hash of its content, and `index.html` gets an import map
from each module's plain path to its hashed file, so modules keep importing each other by
their plain names (`./api.js`) while browsers and CloudFront can cache every asset for
good; only `index.html` must be revalidated. No network, no toolchain: the standard library.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "src"
DIST = HERE / "dist"
HASHED = {".js", ".css"}
# Hashed files of earlier builds are kept a while: a page loaded before a rebuild still
# finds the modules its import map names.
KEEP_OLD_SECONDS = 600


def hashed_name(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    return f"{path.stem}.{digest}{path.suffix}"


def build(source: Path = SOURCE, dist: Path = DIST) -> dict[str, str]:
    """Write the bundle; return the map from each source path to its built path."""
    mapping: dict[str, str] = {}
    written: set[Path] = set()
    for path in sorted(source.rglob("*")):
        if not path.is_file() or path.name == "index.html":
            continue
        relative = path.relative_to(source)
        target = relative.parent / (hashed_name(path) if path.suffix in HASHED else path.name)
        out = dist / target
        out.parent.mkdir(parents=True, exist_ok=True)
        if not out.exists() or out.read_bytes() != path.read_bytes():
            _write_atomically(out, path.read_bytes())
        written.add(out)
        mapping["/" + relative.as_posix()] = "/" + target.as_posix()
    imports = {plain: built for plain, built in mapping.items() if plain.endswith(".js")}
    html = (source / "index.html").read_text()
    for plain, built in mapping.items():
        html = html.replace(f'"{plain}"', f'"{built}"')
    html = html.replace(
        "<!--IMPORTMAP-->",
        '<script type="importmap">' + json.dumps({"imports": imports}) + "</script>",
    )
    index = dist / "index.html"
    _write_atomically(index, html.encode())
    written.add(index)
    _prune(dist, written)
    return mapping


def _write_atomically(path: Path, data: bytes) -> None:
    # The local stack may be serving this folder while it is rebuilt.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _prune(dist: Path, keep: set[Path]) -> None:
    cutoff = time.time() - KEEP_OLD_SECONDS
    for path in dist.rglob("*"):
        if path.is_file() and path not in keep and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)


def main() -> int:
    mapping = build()
    print(f"dashboard: built {len(mapping) + 1} files into {DIST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
