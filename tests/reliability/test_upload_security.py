"""Upload and delete security over a real server, beyond tests/api/test_http.py.

test_http.py already covers: the chat key gets 403 on upload/delete/list (nothing stored),
``../``, absolute, backslash and control-character names sanitised to the uploads folder, size
and type limits. Here: every file the server keeps resolves inside its data directory (also
after a failed or abandoned upload, and when a symlink was planted in the uploads folder),
RFC 5987 ``filename*`` and percent-encoded traversal, names too long for the file system, the
chat key refused before a byte of the body is stored, the chat key unable to delete a document
that exists, and a deletion never touching a file outside the uploads folder.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from rag.paths import seeds_dir
from rag.server import safe_filename

pytestmark = pytest.mark.integration

ADMIN = "sec-admin-4d5e6f708192"
CHAT = "sec-chat-a1b2c3d4e5f6"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    from rag.api.launch import ServerProcess

    root = tmp_path_factory.mktemp("upload-security")
    # The index is built from a copy of the seed corpus, so a deletion test can never reach
    # the repository's own files.
    corpus = root / "corpus"
    shutil.copytree(seeds_dir(), corpus)
    built = subprocess.run(
        [sys.executable, "-m", "rag.cli", "index", "add", str(corpus), "--index",
         str(root / "index")],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    proc = ServerProcess(
        root / "index",
        workdir=root,
        overrides=[f"server.api_key={ADMIN}", f"server.chat_key={CHAT}", "server.max_upload_mb=2"],
        extra_args=["--no-ui"],
    )
    proc.start()
    try:
        yield proc.url, (root / "index" / "data").resolve(), root
    finally:
        proc.stop()
        log = proc.log_path.read_text("utf-8", "replace")
        assert "Traceback (most recent call last)" not in log, log[-3000:]


def _client(url: str, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=url, headers=headers, timeout=300)


def _raw_upload(client: httpx.Client, disposition: bytes, body: bytes) -> httpx.Response:
    raw = (
        b'--sec\r\nContent-Disposition: form-data; name="files"; ' + disposition + b"\r\n"
        b"Content-Type: text/markdown\r\n\r\n" + body + b"\r\n--sec--\r\n"
    )
    return client.post(
        "/api/documents", content=raw, headers={"Content-Type": "multipart/form-data; boundary=sec"}
    )


def _everything_inside(data_dir: Path) -> list[str]:
    """Paths under the data dir whose real location is elsewhere."""
    return [str(p) for p in data_dir.rglob("*") if not p.resolve().is_relative_to(data_dir)]


def _partials(data_dir: Path) -> list[Path]:
    return list((data_dir / "uploads").glob(".partial-*"))


def _note(tag: str) -> bytes:
    # The tag comes from a hostile file name; a NUL in the body would (rightly) make it binary.
    tag = "".join(ch if ch.isprintable() else "?" for ch in tag)
    return f"# Security note {tag}\n\nPembrolizumab note {tag} at {time.time()}.\n".encode()


@pytest.mark.parametrize(
    ("disposition", "stored"),
    [
        # RFC 5987 only: there is no plain filename, so it is not a file at all (422).
        (b"filename*=UTF-8''..%2F..%2F..%2Ftmp%2Fsec_star.md", None),
        # Both: the plain name is used, the encoded one ignored.
        (b"filename=\"ok_plain.md\"; filename*=UTF-8''..%2F..%2Fsec_star2.md", "ok_plain.md"),
        # Percent-encoding is not decoded into a path.
        (b'filename="..%2F..%2Fsec_pct.md"', safe_filename("..%2F..%2Fsec_pct.md")),
        (b'filename="%2e%2e/%2e%2e/sec_dots.md"', "sec_dots.md"),
        # Only control and format characters (RTL override): a default name, same suffix.
        (b'filename="\x01\x02\xe2\x80\xae.md"', "upload.md"),
        # Longer than any file system allows (1000 bytes): cut, not a 500.
        (b'filename="' + b"n" * 1000 + b'.md"', "n" * 117 + ".md"),
        # NUL then traversal.
        (b'filename="a\x00/../../../sec_nul.md"', "sec_nul.md"),
    ],
)
def test_odd_names_stay_in_the_uploads_folder(
    server: tuple[str, Path, Path], disposition: bytes, stored: str | None
) -> None:
    url, data_dir, root = server
    with _client(url, ADMIN) as admin:
        body = _note(disposition.decode("latin-1")[:20])
        response = _raw_upload(admin, disposition, body)
        if stored is None:
            assert response.status_code == 422, response.text
        else:
            assert response.status_code == 200, response.text
            result = response.json()["results"][0]
            assert result["path"] == f"uploads/{stored}", result
            path = data_dir / "uploads" / stored
            assert path.read_bytes() == body
            assert result["status"] == "added" and result["doc_id"], result
            assert admin.delete(f"/api/documents/{result['doc_id']}").status_code == 200
    assert not _everything_inside(data_dir)
    assert not _partials(data_dir)
    for escaped in ("sec_star.md", "sec_star2.md", "sec_pct.md", "sec_dots.md", "sec_nul.md"):
        assert not (Path("/tmp") / escaped).exists()
        assert not (root / escaped).exists() and not (data_dir / escaped).exists()


def test_a_planted_symlink_is_replaced_not_written_through(
    server: tuple[str, Path, Path], tmp_path: Path
) -> None:
    """Someone with file-system access links uploads/planted.md elsewhere: the upload lands in
    the uploads folder and the link's target is never created or written."""
    url, data_dir, _ = server
    uploads = data_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    target = tmp_path / "outside_target.md"
    planted = uploads / "planted.md"
    planted.symlink_to(target)
    existing = tmp_path / "existing_target.md"
    existing.write_bytes(b"# Keep me\n\nunchanged\n")
    planted_existing = uploads / "planted_existing.md"
    planted_existing.symlink_to(existing)
    with _client(url, ADMIN) as admin:
        for name in ("planted.md", "planted_existing.md"):
            r = admin.post("/api/documents", files={"files": (name, _note(name), "text/markdown")})
            assert r.status_code == 200, r.text
            result = r.json()["results"][0]
            stored = (data_dir / result["path"]).resolve()
            assert stored.is_relative_to(uploads) and not (data_dir / result["path"]).is_symlink()
            assert admin.delete(f"/api/documents/{result['doc_id']}").status_code == 200
    assert not target.exists()
    assert existing.read_bytes() == b"# Keep me\n\nunchanged\n"
    for link in (planted, planted_existing):
        if link.is_symlink():
            link.unlink()
    assert not _everything_inside(data_dir)


def test_an_abandoned_upload_leaves_nothing_behind(server: tuple[str, Path, Path]) -> None:
    """The client sends half a multipart body and hangs up: no partial file survives."""
    url, data_dir, _ = server
    parts = urlsplit(url)
    body = (
        b'--sec\r\nContent-Disposition: form-data; name="files"; filename="half.md"\r\n\r\n'
        + b"# Half\n\n"
        + b"x" * 200_000
    )
    head = (
        f"POST /api/documents HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
        f"Authorization: Bearer {ADMIN}\r\nContent-Type: multipart/form-data; boundary=sec\r\n"
        f"Content-Length: {len(body) + 1_000_000}\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head + body)
        time.sleep(1.0)  # the server has started writing the part
    deadline = time.monotonic() + 30
    while _partials(data_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _partials(data_dir)
    assert not (data_dir / "uploads" / "half.md").exists()
    with _client(url, ADMIN) as admin:  # and the server is fine
        assert admin.get("/healthz").json()["status"] == "ok"


def test_the_chat_key_is_refused_before_the_body_is_stored(server: tuple[str, Path, Path]) -> None:
    url, data_dir, _ = server
    before = {p.name for p in (data_dir / "uploads").glob("*")} if data_dir.exists() else set()
    big = b"# Big\n\n" + b"word " * 300_000  # 1.5 MB: would take a while to store
    with _client(url, CHAT) as chat:
        for path in ("/api/documents", "/api/documents/"):
            r = chat.post(path, files={"files": ("chat.md", big, "text/markdown")})
            assert not 200 <= r.status_code < 300, (path, r.status_code, r.text)
        # Other spellings of the key do not lift the restriction.
        for headers in (
            {"Authorization": f"bearer {CHAT}"},
            {"Authorization": f"Bearer {CHAT}", "X-HTTP-Method-Override": "PUT"},
        ):
            r = httpx.post(
                f"{url}/api/documents",
                headers=headers,
                files={"files": ("chat2.md", b"# c\n\ntext\n", "text/markdown")},
                timeout=60,
            )
            assert r.status_code == 403, r.text
        r = httpx.post(
            f"{url}/api/documents",
            params={"api_key": CHAT},
            files={"files": ("chat3.md", b"# c\n\ntext\n", "text/markdown")},
            timeout=60,
        )
        assert r.status_code == 401
    after = {p.name for p in (data_dir / "uploads").glob("*")} if data_dir.exists() else set()
    assert after == before


def test_the_chat_key_cannot_delete_an_existing_document(server: tuple[str, Path, Path]) -> None:
    url, data_dir, _ = server
    with _client(url, ADMIN) as admin, _client(url, CHAT) as chat:
        r = admin.post("/api/documents", files={"files": ("keep.md", _note("keep"), "x/y")})
        doc = r.json()["results"][0]
        stored = data_dir / doc["path"]
        for target in (doc["doc_id"], doc["path"], str(stored)):
            d = chat.delete(f"/api/documents/{target}")
            assert d.status_code in (403, 404), d.text
        assert doc["doc_id"] in {x["doc_id"] for x in admin.get("/api/documents").json()}
        assert stored.is_file()
        found = chat.get("/api/search", params={"q": "security note keep pembrolizumab"}).json()
        assert any(h["provenance"]["doc_id"] == doc["doc_id"] for h in found["hits"])
        assert admin.delete(f"/api/documents/{doc['doc_id']}").status_code == 200
        assert not stored.exists()


def test_deleting_a_document_never_deletes_a_file_outside_the_uploads(
    server: tuple[str, Path, Path],
) -> None:
    """A document added from elsewhere (the CLI, the seed corpus) leaves the index only; and a
    delete by a path outside the index finds nothing and removes nothing."""
    url, _, _ = server
    with _client(url, ADMIN) as admin:
        seeds = [d for d in admin.get("/api/documents").json() if "uploads" not in d["source"]]
        assert seeds, "the seed corpus is indexed"
        source = Path(seeds[0]["source"])
        assert source.is_file()
        for ref in ("/etc/passwd", "..%2F..%2F..%2Fetc%2Fpasswd", str(source) + "/../x"):
            assert not 200 <= admin.delete(f"/api/documents/{ref}").status_code < 300
        assert Path("/etc/passwd").is_file()
        # Deleting a document added from elsewhere removes it from the index, never its file.
        r = admin.delete(f"/api/documents/{seeds[0]['doc_id']}")
        assert r.status_code == 200 and r.json()["status"] == "removed"
        assert source.is_file()
