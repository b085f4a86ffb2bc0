"""tools/fetch_schemas.py: pinned schemas checked by sha256, fetched once, one-line errors.

A plain HTTP server on loopback stands in for the catalog (and the npm registry), so the
tests see each request the script makes; a closed port stands in for "no internet".
"""

from __future__ import annotations

import hashlib
import http.server
import io
import re
import socket
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1]
SCRIPT = TOOLS / "fetch_schemas.py"
FILES = {
    "argoproj.io/rollout_v1alpha1.json": b'{"type": "object"}\n',
    "kyverno.io/policy_v1.json": b'{"type": "object", "title": "policy"}\n',
}


class Catalog(http.server.ThreadingHTTPServer):
    """Serves ``files`` by path and remembers every path asked for."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[str] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Catalog

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        body = self.server.files.get(self.path.lstrip("/"))
        self.send_response(200 if body is not None else 404)
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def catalog() -> Iterator[Catalog]:
    server = Catalog(dict(FILES))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def write_lock(path: Path, source: str, files: dict[str, bytes]) -> Path:
    lines = ["# a test lock", source]
    lines += [f"{hashlib.sha256(data).hexdigest()}  {name}" for name, data in files.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens once the socket is closed


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False
    )


def test_fetches_what_is_missing_then_a_second_run_fetches_nothing(
    catalog: Catalog, tmp_path: Path
) -> None:
    lock = write_lock(tmp_path / "crds.sha256", f"source {catalog.url}/{{path}}", FILES)
    dest = tmp_path / "cache"
    first = run(str(lock), str(dest), "--setting", "CRD_SCHEMAS")
    assert first.returncode == 0, first.stderr
    assert "fetched 2 pinned files" in first.stdout
    assert {p: (dest / p).read_bytes() for p in FILES} == FILES
    assert len(catalog.requests) == 2

    second = run(str(lock), str(dest), "--setting", "CRD_SCHEMAS")
    assert second.returncode == 0, second.stderr
    assert second.stdout == ""
    assert len(catalog.requests) == 2  # nothing asked for


def test_a_complete_copy_needs_no_network(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    for name, data in FILES.items():
        (shared / name).parent.mkdir(parents=True, exist_ok=True)
        (shared / name).write_bytes(data)
    unreachable = f"source http://127.0.0.1:{closed_port()}/{{path}}"
    lock = write_lock(tmp_path / "crds.sha256", unreachable, FILES)
    result = run(str(lock), str(shared), "--setting", "CRD_SCHEMAS")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_only_the_file_that_changed_is_fetched_again(catalog: Catalog, tmp_path: Path) -> None:
    lock = write_lock(tmp_path / "crds.sha256", f"source {catalog.url}/{{path}}", FILES)
    dest = tmp_path / "cache"
    assert run(str(lock), str(dest), "--setting", "CRD_SCHEMAS").returncode == 0
    (dest / "kyverno.io/policy_v1.json").write_text("{}")
    catalog.requests.clear()
    assert run(str(lock), str(dest), "--setting", "CRD_SCHEMAS").returncode == 0
    assert catalog.requests == ["/kyverno.io/policy_v1.json"]
    assert (dest / "kyverno.io/policy_v1.json").read_bytes() == FILES["kyverno.io/policy_v1.json"]


def test_bytes_that_do_not_match_the_lock_are_refused_and_not_kept(
    catalog: Catalog, tmp_path: Path
) -> None:
    lock = write_lock(tmp_path / "crds.sha256", f"source {catalog.url}/{{path}}", FILES)
    catalog.files["kyverno.io/policy_v1.json"] = b'{"tampered": true}'
    dest = tmp_path / "cache"
    result = run(str(lock), str(dest), "--setting", "CRD_SCHEMAS")
    assert result.returncode == 2
    assert "kyverno.io/policy_v1.json" in result.stderr
    assert "the lock says" in result.stderr
    assert not (dest / "kyverno.io/policy_v1.json").exists()
    assert not (dest / "argoproj.io/rollout_v1alpha1.json").exists()  # all or nothing


def test_no_network_is_one_line_naming_the_files_the_setting_and_the_command(
    tmp_path: Path,
) -> None:
    unreachable = f"source http://127.0.0.1:{closed_port()}/{{path}}"
    lock = write_lock(tmp_path / "crds.sha256", unreachable, FILES)
    result = run(str(lock), str(tmp_path / "cache"), "--setting", "CRD_SCHEMAS")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for words in ("CRD_SCHEMAS=", "lacks 2 of the files", str(lock), "make schemas"):
        assert words in lines[0]
    assert "argoproj.io/rollout_v1alpha1.json" in lines[0]


def test_an_archive_lock_takes_its_file_from_the_tarball(catalog: Catalog, tmp_path: Path) -> None:
    schema = b'{"$schema": "http://json-schema.org/draft-04/schema#"}'
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("package/renovate-schema.json")
        info.size = len(schema)
        archive.addfile(info, io.BytesIO(schema))
    catalog.files["renovate-1.0.0.tgz"] = buffer.getvalue()
    lock = write_lock(
        tmp_path / "renovate.sha256",
        f"archive {catalog.url}/renovate-1.0.0.tgz package/",
        {"renovate-schema.json": schema},
    )
    target = tmp_path / "schemas/renovate-schema.json"
    result = run(str(lock), str(target), "--setting", "RENOVATE_SCHEMA")
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == schema


def test_relock_writes_the_digests_of_the_new_pin(catalog: Catalog, tmp_path: Path) -> None:
    stale = dict.fromkeys(FILES, b"old bytes")
    lock = write_lock(tmp_path / "crds.sha256", f"source {catalog.url}/{{path}}", stale)
    assert run(str(lock), "--relock").returncode == 0
    expected = write_lock(tmp_path / "expected", f"source {catalog.url}/{{path}}", FILES)
    assert lock.read_text() == expected.read_text()


@pytest.mark.parametrize("lock", sorted(TOOLS.glob("*.sha256")), ids=lambda p: p.name)
def test_the_repository_locks_parse_and_pin_at_one_revision(lock: Path) -> None:
    text = lock.read_text()
    sources = [line for line in text.splitlines() if line.startswith(("source ", "archive "))]
    assert len(sources) == 1
    # A pin, not a moving branch: a commit in the URL or a versioned tarball.
    assert "/main/" not in sources[0]
    assert "/master/" not in sources[0]
    pinned = [line for line in text.splitlines() if line and not line.startswith("#")][1:]
    assert pinned
    assert all(re.fullmatch(r"[0-9a-f]{64}  \S+", line) for line in pinned)
