"""Fetch GraphiQL and React from the npm registry into sinergi/static/graphiql/ (dev time only).

Sinergi serves GraphiQL's files itself, so the IDE works on a network with no CDN. The files are
committed; this script brings them (and each package's LICENSE) back from `npm pack` as listed
in assets.json and refuses any whose sha384 differs from the recorded integrity. To move to a
new version, change assets.json (version and integrity, as the package's CDN copy publishes it)
and run: .venv/bin/python tools/vendor_graphiql.py
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from sinergi.graphiql import ASSETS_DIR, integrity


def main() -> int:
    manifest = json.loads((ASSETS_DIR / "assets.json").read_text())
    with tempfile.TemporaryDirectory() as work:
        for asset in manifest["assets"]:
            spec = f"{asset['package']}@{asset['version']}"
            tarball = subprocess.run(  # noqa: S603
                ["npm", "pack", "--silent", spec],  # noqa: S607
                cwd=work,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()[-1]
            with tarfile.open(Path(work) / tarball) as archive:
                archive.extractall(Path(work) / spec, filter="data")
            package = Path(work) / spec / "package"
            if integrity((package / asset["path"]).read_bytes()) != asset["integrity"]:
                print(f"{spec} {asset['path']}: integrity differs; nothing copied", file=sys.stderr)
                return 1
            shutil.copyfile(package / asset["path"], ASSETS_DIR / asset["file"])
            shutil.copyfile(package / "LICENSE", ASSETS_DIR / asset["licence"])
            print(f"{spec} {asset['path']} -> {asset['file']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
