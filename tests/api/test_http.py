"""The HTTP API over a real `rag serve` on loopback: everything that needs no generation.

Keys, CORS, limits, uploads, documents, feedback, search, health and the error shape.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "docs"


def _error(response: httpx.Response, status: int, kind: str | None = None) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"}
    if kind:
        assert body["error"]["type"] == kind
    return body["error"]["message"]


# -- health, docs, search ------------------------------------------------------------------------


def test_health_is_open_and_reports_the_index(anonymous: httpx.Client) -> None:
    health = anonymous.get("/healthz").json()
    assert health["status"] == "ok"
    assert health["documents"] >= 2 and health["chunks"] > 0
    assert isinstance(health["generation"], int)
    assert health["models"]["embedder"] == "all-MiniLM-L6-v2"
    assert health["generations_limit"] == 1


def test_openapi_docs(anonymous: httpx.Client) -> None:
    page = anonymous.get("/docs")
    assert page.status_code == 200
    # Offline: the Swagger UI assets come from this server, not a CDN.
    assert "cdn." not in page.text and "/docs-assets/swagger-ui-bundle.js" in page.text
    assert anonymous.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    paths = anonymous.get("/openapi.json").json()["paths"]
    for path in (
        "/api/ask",
        "/api/ask/stream",
        "/api/search",
        "/api/documents",
        "/api/documents/{doc_id}",
        "/api/feedback",
        "/v1/chat/completions",
        "/v1/models",
        "/healthz",
    ):
        assert path in paths


def test_search_with_the_chat_key(chat: httpx.Client) -> None:
    found = chat.get("/api/search", params={"q": "ivonescimab progression-free", "k": 3}).json()
    assert 1 <= len(found["hits"]) <= 3
    assert any("HARMONi-A" in h["text"] for h in found["hits"])
    assert found["index_fingerprint"]
    doc = found["hits"][0]["provenance"]["doc_id"]
    only = chat.get("/api/search", params={"q": "immunotherapy", "doc": doc}).json()
    assert {h["provenance"]["doc_id"] for h in only["hits"]} == {doc}


def test_references_export_for_the_cited_documents(chat: httpx.Client, anonymous) -> None:
    import bibtexparser
    import rispy

    hit = chat.get("/api/search", params={"q": "chemo-radio-immunotherapy review", "k": 1})
    doc = hit.json()["hits"][0]["provenance"]["doc_id"]
    one = chat.get(f"/api/documents/{doc}/cite", params={"format": "bibtex"})
    assert one.status_code == 200 and one.headers["content-type"].startswith("application/x-bibtex")
    assert one.headers["content-disposition"] == f'attachment; filename="{doc}.bib"'
    (entry,) = bibtexparser.parse_string(one.text).entries
    assert entry["doi"] == "10.3390/cancers18010137" and entry["year"] == "2025"
    library = chat.get("/api/documents/cite", params={"format": "ris"})
    assert library.headers["content-type"].startswith("application/x-research-info-systems")
    assert len(rispy.loads(library.text)) == 2  # the whole seed library
    items = chat.get("/api/documents/cite", params={"format": "csl-json", "doc": doc}).json()
    assert [i["id"] for i in items] == [doc] and items[0]["DOI"] == "10.3390/cancers18010137"
    _error(chat.get("/api/documents/nope/cite"), 404)
    message = _error(chat.get(f"/api/documents/{doc}/cite", params={"format": "endnote"}), 422)
    assert "format" in message
    _error(anonymous.get(f"/api/documents/{doc}/cite"), 401)


def test_trials_table_with_every_cell_linked(live, chat: httpx.Client, anonymous) -> None:
    rows = chat.get("/api/trials").json()
    harmoni = next(r for r in rows if r["trial"]["text"] == "HARMONi-A")
    assert harmoni["registry_id"]["text"] == "NCT05184712"
    link = harmoni["result"]["view_url"]
    assert "sig=" in link  # keys are set: the cell's link is signed
    page = anonymous.get(link.split("#")[0])  # a new tab: no key, the signature opens it
    assert page.status_code == 200 and "7.1 months" in page.text
    table = chat.get("/api/trials", params={"format": "csv"})
    assert table.headers["content-type"].startswith("text/csv")
    assert "HARMONi-A" in table.text and "NCT05184712" in table.text
    _error(anonymous.get("/api/trials"), 401)
    _error(chat.get("/api/trials", params={"format": "xml"}), 422)


def test_validation_errors_use_the_error_shape(chat: httpx.Client) -> None:
    message = _error(chat.post("/api/ask", json={"k": 3}), 422, "ValidationError")
    assert "question" in message
    _error(chat.post("/api/ask", json={"question": "   "}), 422, "ValidationError")
    _error(chat.get("/api/search"), 422, "ValidationError")
    _error(chat.post("/api/feedback", json={"question": "q", "answer": "a", "rating": "meh"}), 422)


# -- auth -----------------------------------------------------------------------------------------


def test_no_key_or_a_wrong_key_is_401(live, anonymous: httpx.Client) -> None:
    response = anonymous.post("/api/ask", json={"question": live.question})
    _error(response, 401, "Unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    _error(anonymous.get("/api/search", params={"q": "x"}), 401)
    _error(anonymous.get("/api/documents"), 401)
    _error(anonymous.get("/v1/models"), 401)
    # Near misses (a prefix, one extra character, the other key's case, non-ASCII) all fail:
    # the comparison is of the whole key, in constant time, on bytes.
    for wrong in (
        live.admin_key[:-1],
        live.admin_key + "x",
        live.chat_key.upper(),
        "ключ-" + live.admin_key,
        "",
    ):
        with live.client(wrong) as client:
            _error(client.get("/api/documents"), 401)
            _error(client.get("/api/search", params={"q": "x"}), 401)


def test_chat_key_reaches_only_chat_endpoints(live, chat: httpx.Client) -> None:
    assert chat.get("/v1/models").status_code == 200
    assert chat.get("/api/search", params={"q": "pfs"}).status_code == 200
    files = {"files": ("note.md", b"# Note\n\nA note about nivolumab.\n", "text/markdown")}
    _error(chat.post("/api/documents", files=files), 403, "Forbidden")
    _error(chat.delete("/api/documents/anything"), 403, "Forbidden")
    _error(chat.get("/api/documents"), 403, "Forbidden")
    assert not list((live.data_dir / "uploads").glob("note*"))


def test_admin_key_reaches_everything(admin: httpx.Client) -> None:
    assert admin.get("/api/documents").status_code == 200
    assert admin.get("/api/search", params={"q": "pfs"}).status_code == 200
    assert admin.get("/v1/models").status_code == 200


# -- CORS -----------------------------------------------------------------------------------------


def test_cors_preflight_allows_configured_origins_only(live, anonymous: httpx.Client) -> None:
    request = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    allowed = anonymous.options("/api/ask/stream", headers={"Origin": live.origin, **request})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == live.origin
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()

    denied = anonymous.options(
        "/api/ask/stream", headers={"Origin": "http://evil.example", **request}
    )
    assert denied.status_code == 400
    assert "access-control-allow-origin" not in denied.headers

    # Actual responses carry the header for the allowed origin (errors too, so a widget can
    # read them) and expose Retry-After.
    response = anonymous.get("/api/search", params={"q": "x"}, headers={"Origin": live.origin})
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == live.origin
    assert "retry-after" in response.headers["access-control-expose-headers"].lower()
    other = anonymous.get("/healthz", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_static_widget_is_public(anonymous: httpx.Client) -> None:
    script = anonymous.get("/static/widget.js", headers={"Origin": "http://any.example"})
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert script.headers["access-control-allow-origin"] == "*"
    assert "/api/ask/stream" in script.text
    page = anonymous.get("/static/example.html")
    assert page.status_code == 200 and "widget.js" in page.text
    assert anonymous.get("/static/nope.js").status_code == 404


# -- request limits ---------------------------------------------------------------------------


def test_json_body_over_the_limit_is_413(live, chat: httpx.Client) -> None:
    big = {"question": "pfs?", "history": [{"role": "user", "content": "x" * 9000}] * 3}
    message = _error(chat.post("/api/ask", json=big), 413, "RequestTooLarge")
    assert "max_request_kb" in message

    def chunked():  # no Content-Length: the limit must hold while the body streams in
        yield b'{"question": "pfs?", "history": ['
        for _ in range(40):
            yield b'{"role": "user", "content": "' + b"y" * 1000 + b'"},'
        yield b'{"role": "user", "content": "z"}]}'

    response = chat.post(
        "/api/feedback", content=chunked(), headers={"Content-Type": "application/json"}
    )
    _error(response, 413, "RequestTooLarge")


# -- documents --------------------------------------------------------------------------------


def _uploads(live) -> set[str]:
    return {p.name for p in (live.data_dir / "uploads").iterdir() if p.is_file()}


def test_upload_list_search_delete(live, admin: httpx.Client, chat: httpx.Client) -> None:
    text = (
        b"# Zorbitinib phase 2 trial\n\nIn the ZORBA-2 study, zorbitinib achieved an objective "
        b"response rate of 41% in KRAS G12C-mutant colorectal cancer.\n"
    )
    files = [
        ("files", ("zorba trial.md", text, "text/markdown")),
        ("files", ("trial_report.pdf", (FIXTURES / "trial_report.pdf").read_bytes(), "x/y")),
    ]
    report = admin.post("/api/documents", files=files)
    assert report.status_code == 200, report.text
    results = {Path(r["path"]).name: r for r in report.json()["results"]}
    assert results["zorba trial.md"]["status"] == "added"
    assert results["trial_report.pdf"]["status"] == "added"
    # Paths are reported relative to the data dir, never as server paths.
    assert all(r["path"].startswith("uploads/") for r in results.values())
    assert {"zorba trial.md", "trial_report.pdf"} <= _uploads(live)

    doc_id = results["zorba trial.md"]["doc_id"]
    listed = {d["doc_id"]: d for d in admin.get("/api/documents").json()}
    assert listed[doc_id]["title"] == "Zorbitinib phase 2 trial"
    hits = chat.get("/api/search", params={"q": "zorbitinib response rate", "k": 1}).json()
    assert hits["hits"][0]["provenance"]["doc_id"] == doc_id

    # The same file again is a no-op; other bytes under the same name get a new file.
    again = admin.post("/api/documents", files=[("files", ("zorba trial.md", text, "a/b"))])
    assert again.json()["results"][0]["status"] == "unchanged"
    changed = admin.post("/api/documents", files=[("file", ("zorba trial.md", text + b"x", "a"))])
    assert Path(changed.json()["results"][0]["path"]).name == "zorba trial-1.md"

    removed = admin.delete(f"/api/documents/{doc_id}")
    assert removed.status_code == 200 and removed.json()["status"] == "removed"
    assert "zorba trial.md" not in _uploads(live)  # an uploaded file goes with its document
    assert doc_id not in {d["doc_id"] for d in admin.get("/api/documents").json()}
    message = _error(admin.delete(f"/api/documents/{doc_id}"), 404, "DocumentNotFoundError")
    assert doc_id in message
    for r in (*changed.json()["results"], results["trial_report.pdf"]):
        assert admin.delete(f"/api/documents/{r['doc_id']}").status_code == 200


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("../../../../tmp/evil.md", "evil.md"),
        ("/etc/cron.d/evil2.md", "evil2.md"),
        ("..\\..\\windows\\evil3.md", "evil3.md"),
        ("ev\x00il\x1b[31m4.md", "evil_31m4.md"),
        ("....md", "upload.md"),
    ],
)
def test_upload_names_are_sanitised(live, admin: httpx.Client, sent: str, stored: str) -> None:
    body = f"# Safe {stored}\n\nPembrolizumab note {time.time()}.\n".encode()
    # Built by hand: client libraries escape odd names, a hostile client sends them raw.
    raw = (
        b'--xyz\r\nContent-Disposition: form-data; name="files"; filename="'
        + sent.encode()
        + b'"\r\nContent-Type: text/markdown\r\n\r\n'
        + body
        + b"\r\n--xyz--\r\n"
    )
    response = admin.post(
        "/api/documents",
        content=raw,
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    assert result["status"] == "added", result
    assert result["path"] == f"uploads/{stored}"
    path = live.data_dir / "uploads" / stored
    assert path.read_bytes() == body
    assert path.resolve().parent == (live.data_dir / "uploads").resolve()
    assert not Path("/tmp/evil.md").exists() or Path("/tmp/evil.md").read_bytes() != body
    assert admin.delete(f"/api/documents/{result['doc_id']}").status_code == 200


def test_upload_limits(live, admin: httpx.Client) -> None:
    before = _uploads(live)
    too_big = b"# Big\n\n" + b"word " * int(live.max_upload_mb * 1024 * 1024 / 5 + 100)
    message = _error(
        admin.post("/api/documents", files=[("files", ("big.md", too_big, "text/markdown"))]),
        413,
        "FileTooLargeError",
    )
    assert "max_upload_mb" in message

    def streamed():  # chunked, no Content-Length: the limit holds while the body arrives
        yield b'--b\r\nContent-Disposition: form-data; name="files"; filename="s.md"\r\n\r\n'
        for _ in range(200):
            yield b"z" * 1024
        yield b"\r\n--b--\r\n"

    response = admin.post(
        "/api/documents",
        content=streamed(),
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    _error(response, 413, "FileTooLargeError")

    for name in ("notes.docx", "run.exe", "README"):
        response = admin.post("/api/documents", files=[("files", (name, b"data", "x/y"))])
        assert "unsupported file type" in _error(response, 415, "UnsupportedFormatError")
    _error(admin.post("/api/documents", json={"files": []}), 415)
    _error(admin.post("/api/documents", files={"note": (None, "plain field")}), 422)
    # Nothing rejected was kept, not even a partial file.
    left = {p.name for p in (live.data_dir / "uploads").iterdir()}
    assert left == before


# -- feedback -----------------------------------------------------------------------------------


def test_feedback_is_appended_with_fingerprints(live, chat: httpx.Client) -> None:
    sent = {
        "question": live.question,
        "answer": "The median PFS was 7.1 months [1].",
        "rating": "down",
        "comment": "missing the comparator arm",
        "fingerprints": {"index": "abc123"},
    }
    response = chat.post("/api/feedback", json=sent)
    assert response.status_code == 200 and response.json()["stored"] is True
    lines = (live.data_dir / "feedback.jsonl").read_text().splitlines()
    record = json.loads(lines[-1])
    assert record["rating"] == "down" and record["comment"] == sent["comment"]
    assert record["question"] == live.question and record["answer"] == sent["answer"]
    assert record["answer_fingerprints"] == {"index": "abc123"}
    assert {"embedder", "index", "settings"} <= set(record["fingerprints"])
    assert abs(record["timestamp"] - time.time()) < 120


def test_chat_key_without_api_key_is_refused() -> None:
    from rag.api.app import create_app
    from rag.assistant import Assistant
    from rag.errors import ConfigError
    from rag.settings import load_settings

    settings = load_settings(overrides=["server.chat_key=public"])
    with pytest.raises(ConfigError, match=r"set server\.api_key too"):
        create_app(Assistant(settings), settings)
