"""Make a folder hold the JSON schemas a lock file pins, fetching only what is missing.

A lock file (``tools/*.sha256``) names where the files come from and the sha256 of each:

    source https://host/owner/repo/<commit>/{path}   one download per file, or
    archive https://host/pkg-1.2.3.tgz package/      files inside a tarball, under a prefix
    <sha256>  <path>                                 one line per file

Steps: check every listed file in DEST against its sha256; if all match, stop (a second run
fetches nothing); otherwise download the missing or different ones into a temporary folder,
verify each, then move them into DEST. Any failure is one line on stderr, naming the setting
that points at DEST and the command that fetches, with exit status 2.

Usage: fetch_schemas.py LOCK DEST --setting NAME [--source URL]
       fetch_schemas.py LOCK --relock    (after moving the pin: download and write new digests)
DEST is a folder, or the file itself when the lock pins a single file.
Only the standard library: it runs before the workspace is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FetchError", "Lock", "ensure", "main", "missing_files", "read_lock", "relock"]

TIMEOUT_SECONDS = 60


class FetchError(Exception):
    """What went wrong, in one line."""


@dataclass(frozen=True)
class Lock:
    """A lock file: where the files come from and what each must hash to."""

    kind: str  # "source" (one URL per file) or "archive" (one tarball)
    url: str
    prefix: str
    files: dict[str, str]  # path -> sha256


def read_lock(path: Path) -> Lock:
    """Parse ``path``; comments start with ``#``."""
    kind = url = prefix = ""
    files: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        if words[0] in {"source", "archive"}:
            kind, url, prefix = words[0], words[1], words[2] if len(words) > 2 else ""
        elif len(words) == 2 and len(words[0]) == 64:
            files[words[1]] = words[0]
        else:
            raise FetchError(f"{path}:{number}: not a source, archive or '<sha256>  <path>' line")
    if not kind or not files:
        raise FetchError(f"{path}: needs a source or archive line and at least one file")
    return Lock(kind, url, prefix, files)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _target(dest: Path, lock: Lock, name: str) -> Path:
    return dest if dest.suffix == ".json" and len(lock.files) == 1 else dest / name


def _download(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            data: bytes = response.read()
            return data
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"cannot download {url}: {reason}") from None


def _download_all(lock: Lock, names: list[str], source: str) -> dict[str, bytes]:
    if lock.kind == "source":
        with ThreadPoolExecutor(max_workers=8) as pool:
            blobs = pool.map(lambda n: _download(source.replace("{path}", n)), names)
            return dict(zip(names, blobs, strict=True))
    fetched = {}
    with tarfile.open(fileobj=io.BytesIO(_download(source)), mode="r:gz") as archive:
        for name in names:
            try:
                member = archive.extractfile(lock.prefix + name)
            except KeyError:
                member = None
            if member is None:
                raise FetchError(f"{source} has no {lock.prefix}{name}")
            fetched[name] = member.read()
    return fetched


def _fetch(lock: Lock, names: list[str], source: str) -> dict[str, bytes]:
    fetched = _download_all(lock, names, source)
    for name, data in fetched.items():
        if _sha256(data) != lock.files[name]:
            raise FetchError(
                f"{name} from {source} has sha256 {_sha256(data)}, the lock says {lock.files[name]}"
            )
    return fetched


def missing_files(lock: Lock, dest: Path) -> list[str]:
    """The listed files that ``dest`` lacks or holds with other bytes."""
    return [
        name
        for name, digest in lock.files.items()
        if not (target := _target(dest, lock, name)).is_file()
        or _sha256(target.read_bytes()) != digest
    ]


def ensure(lock_path: Path, dest: Path, source: str | None = None) -> int:
    """Bring ``dest`` in line with the lock; return how many files were fetched."""
    lock = read_lock(lock_path)
    missing = missing_files(lock, dest)
    if not missing:
        return 0
    fetched = _fetch(lock, missing, source or lock.url)
    with tempfile.TemporaryDirectory(dir=_writable_parent(dest)) as staging:
        for name, data in fetched.items():
            staged = Path(staging) / name
            staged.parent.mkdir(parents=True, exist_ok=True)
            staged.write_bytes(data)
        for name in fetched:
            target = _target(dest, lock, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(Path(staging) / name, target)
    return len(fetched)


def relock(lock_path: Path) -> None:
    """Download every listed file from the lock's (new) URL and write its digest in place."""
    lock = read_lock(lock_path)
    fetched = _download_all(lock, list(lock.files), lock.url)
    lines = []
    for line in lock_path.read_text().splitlines():
        words = line.split()
        pinned = len(words) == 2 and words[1] in fetched
        lines.append(f"{_sha256(fetched[words[1]])}  {words[1]}" if pinned else line)
    lock_path.write_text("\n".join(lines) + "\n")


def _writable_parent(dest: Path) -> Path:
    parent = dest.parent if dest.suffix == ".json" else dest
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(f"cannot create {parent}: {exc.strerror}") from None
    return parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lock", type=Path)
    parser.add_argument("dest", type=Path, nargs="?")
    parser.add_argument("--setting", default="DEST", help="the make variable that names DEST")
    parser.add_argument("--source", help="fetch from here instead of the lock's URL (a mirror)")
    parser.add_argument("--relock", action="store_true", help="write the digests at a new pin")
    args = parser.parse_args(argv)
    if args.relock:
        relock(args.lock)
        return 0
    if args.dest is None:
        parser.error("DEST is required unless --relock")
    try:
        fetched = ensure(args.lock, args.dest, args.source)
    except FetchError as exc:
        missing = missing_files(read_lock(args.lock), args.dest)
        print(
            f"error: {args.setting}={args.dest} lacks {len(missing)} of the files pinned in "
            f"{args.lock} (first: {missing[0]}) and fetching failed: {exc}. Set {args.setting} "
            "to a copy of them, or run `make schemas` where the internet is reachable.",
            file=sys.stderr,
        )
        return 2
    if fetched:
        print(f"{args.setting}: fetched {fetched} pinned files into {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
