"""References out: indexed documents as BibTeX, RIS and CSL-JSON, for reference managers.

The fields come from what ingestion recorded (``DocMeta``: JATS front matter, a metadata
sidecar, HTML meta tags, a PDF's info dictionary). Nothing is guessed: a field the document
did not carry is left out, and a document without authors or a year exports without them.
BibTeX goes through bibtexparser (text fields LaTeX-encoded by pylatexenc, so "&", "%", "_"
and non-ASCII letters survive a round trip; DOIs and URLs verbatim), RIS through rispy;
CSL-JSON is the citeproc item schema.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from typing import Any, Literal

from rag.errors import RequestError
from rag.types import DocMeta

Format = Literal["bibtex", "ris", "csl-json"]
FORMATS: tuple[Format, ...] = ("bibtex", "ris", "csl-json")
MEDIA_TYPES: dict[Format, str] = {
    "bibtex": "application/x-bibtex",
    "ris": "application/x-research-info-systems",
    "csl-json": "application/vnd.citationstyles.csl+json",
}
SUFFIXES: dict[Format, str] = {"bibtex": ".bib", "ris": ".ris", "csl-json": ".json"}
# Not LaTeX-encoded here: identifiers are read as written; authors are encoded name by name.
_VERBATIM = frozenset({"doi", "url", "pmid", "pmcid", "year", "author"})
_GROUP = re.compile(
    r"\b(group|consortium|committee|network|investigators|collaborat\w*|society|association|"
    r"organi[sz]ation|institute|council|panel|team)\b",
    re.I,
)
_DATE = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?")


def check_format(name: str) -> Format:
    """``name`` as a format, or a clear error naming the ones there are."""
    wanted = name.strip().lower().replace("_", "-")
    wanted = {"bib": "bibtex", "csl": "csl-json", "json": "csl-json"}.get(wanted, wanted)
    if wanted not in FORMATS:
        raise RequestError(
            422, "ValidationError", f"unknown citation format {name!r}: use {', '.join(FORMATS)}"
        )
    return wanted  # type: ignore[return-value]


def export(documents: Sequence[tuple[str, DocMeta]], fmt: Format) -> str:
    """``documents`` (doc id, metadata), in order, as one ``fmt`` file."""
    if fmt == "bibtex":
        return _bibtex(documents)
    if fmt == "ris":
        return _ris(documents)
    return json.dumps([csl_item(doc_id, meta) for doc_id, meta in documents], indent=2) + "\n"


def split_name(name: str) -> tuple[str, str]:
    """(family, given) of "Liu, Yang" or "Yang Liu"; a one-word name or a group ("WHO Working
    Group", "KEYNOTE-189 Investigators") is all family."""
    name = " ".join(name.split())
    if _GROUP.search(name):
        return name, ""
    if "," in name:
        family, given = name.split(",", 1)
        return family.strip(), given.strip()
    parts = name.rsplit(" ", 1)
    return (parts[1], parts[0]) if len(parts) == 2 else (name, "")


def _date_parts(meta: DocMeta) -> list[int]:
    match = _DATE.match(meta.date or "")
    if match:
        return [int(x) for x in match.groups() if x]
    return [meta.year] if meta.year else []


def _kind(meta: DocMeta) -> str:
    """CSL item type: a journal article when a journal or a PubMed id says so."""
    if meta.journal or meta.pmid or meta.pmcid:
        return "article-journal"
    if meta.kind == "news":
        return "article-newspaper"
    return "article" if meta.doi else "document"


def csl_item(doc_id: str, meta: DocMeta) -> dict[str, Any]:
    item: dict[str, Any] = {"id": doc_id, "type": _kind(meta), "title": meta.title or doc_id}
    if meta.authors:
        item["author"] = [
            {"family": f, "given": g} if g else {"literal": f}
            for f, g in (split_name(a) for a in meta.authors)
        ]
    if parts := _date_parts(meta):
        item["issued"] = {"date-parts": [parts]}
    container = meta.journal or (meta.source if meta.kind == "news" else "")
    optional = {
        "container-title": container,
        "DOI": meta.doi,
        "PMID": meta.pmid,
        "PMCID": meta.pmcid,
        "URL": meta.url or (meta.source if meta.source.startswith("http") else ""),
    }
    item.update({k: v for k, v in optional.items() if v})
    return item


def _key(doc_id: str, meta: DocMeta, taken: set[str]) -> str:
    """liu2025ivonescimab: first author's family name, year, first title word (ASCII)."""
    family = split_name(meta.authors[0])[0] if meta.authors else ""
    words = re.findall(r"[A-Za-z0-9]+", _ascii(meta.title))
    first = next((w for w in words if len(w) > 3), words[0] if words else "")
    year = str(_date_parts(meta)[0]) if _date_parts(meta) else ""
    base = re.sub(r"[^a-z0-9]", "", _ascii(f"{family}{year}{first}").lower()) or re.sub(
        r"[^A-Za-z0-9]", "", doc_id
    )
    base = base or "document"
    key, n = base, 1
    while key in taken:
        n += 1
        key = f"{base}{chr(ord('a') + n - 2)}" if n <= 27 else f"{base}{n}"
    taken.add(key)
    return key


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _bibtex(documents: Sequence[tuple[str, DocMeta]]) -> str:
    import bibtexparser
    from bibtexparser import model
    from pylatexenc.latexencode import unicode_to_latex

    library = bibtexparser.Library()
    taken: set[str] = set()
    for doc_id, meta in documents:
        item = csl_item(doc_id, meta)
        entry_type = "article" if item["type"] == "article-journal" else "misc"
        fields = {
            "title": item["title"],
            "author": " and ".join(
                f"{unicode_to_latex(f)}, {unicode_to_latex(g)}"
                if g
                else f"{{{unicode_to_latex(f)}}}"
                for f, g in (split_name(a) for a in meta.authors)
            ),
            "journal" if entry_type == "article" else "howpublished": item.get(
                "container-title", ""
            ),
            "year": str(item["issued"]["date-parts"][0][0]) if "issued" in item else "",
            "doi": meta.doi,
            "pmid": meta.pmid,
            "pmcid": meta.pmcid,
            "url": item.get("URL", ""),
            "note": f"onco-rag document {doc_id}",
        }
        library.add(
            model.Entry(
                entry_type,
                _key(doc_id, meta, taken),
                [
                    model.Field(k, v if k in _VERBATIM else unicode_to_latex(v))
                    for k, v in fields.items()
                    if v
                ],
            )
        )
    return bibtexparser.write_string(library)


def _bib_name(name: str, encode: Any) -> str:
    """ "Family, Given", LaTeX-encoded; a group name braced so BibTeX keeps it whole."""
    family, given = split_name(name)
    return f"{encode(family)}, {encode(given)}" if given else f"{{{encode(family)}}}"


def _ris(documents: Sequence[tuple[str, DocMeta]]) -> str:
    import rispy

    kinds = {"article-journal": "JOUR", "article-newspaper": "NEWS"}
    entries = []
    for doc_id, meta in documents:
        item = csl_item(doc_id, meta)
        entry: dict[str, Any] = {
            "type_of_reference": kinds.get(item["type"], "GEN"),
            "id": doc_id,
            "title": item["title"],
        }
        if meta.authors:
            entry["authors"] = [
                f"{f}, {g}" if g else f for f, g in (split_name(a) for a in meta.authors)
            ]
        if "issued" in item:
            entry["year"] = str(item["issued"]["date-parts"][0][0])
        if meta.date:
            entry["date"] = meta.date
        for key, value in (
            ("journal_name", item.get("container-title")),
            ("doi", meta.doi),
            ("accession_number", meta.pmid),
        ):
            if value:
                entry[key] = value
        if item.get("URL"):
            entry["urls"] = [item["URL"]]
        if meta.pmcid:
            entry["notes"] = [f"PMCID: {meta.pmcid}"]
        entries.append(entry)
    return rispy.dumps(entries)
