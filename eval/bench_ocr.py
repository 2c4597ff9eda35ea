"""OCR benchmark: character accuracy and pages/s on real scans made from text PDFs.

Each text PDF is rendered to page images at a scanner's resolution and wrapped as an
image-only PDF (no text layer: what a scanner gives back). The loader reads it by OCR; its
text is compared with what the same loader reads from the original's text layer. The
baseline in the same run is the text-layer read itself (its pages/s), so the cost of OCR is a
ratio on the same machine.

    python -m rag.eval.bench_ocr --out eval/results/ocr.json
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path
from typing import Any

from rag.ingest.pdf import load_pdf
from rag.paths import write_json_atomic
from rag.types import DocMeta

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "docs"
DEFAULT_PDFS = ("trial_report.pdf", "two_columns.pdf")


def scan(pdf: bytes, dpi: int = 200, pages: list[int] | None = None) -> bytes:
    """``pdf`` as a scanner gives it back: every page (or ``pages``, 0-based) an image in
    greyscale at ``dpi``, with no text layer; other pages left as they were."""
    import pypdf
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(pdf)
    try:
        images = [
            document[i].render(scale=dpi / 72).to_pil().convert("L") for i in range(len(document))
        ]
    finally:
        document.close()
    buffer = io.BytesIO()
    images[0].save(buffer, format="PDF", save_all=True, append_images=images[1:], resolution=dpi)
    if pages is None:
        return buffer.getvalue()
    scanned = pypdf.PdfReader(io.BytesIO(buffer.getvalue()))
    writer = pypdf.PdfWriter()
    for i, page in enumerate(pypdf.PdfReader(io.BytesIO(pdf)).pages):
        writer.add_page(scanned.pages[i] if i in pages else page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def character_accuracy(truth: str, read: str) -> float:
    """1 - character error rate (Levenshtein distance / length of the truth), on text with
    whitespace runs collapsed (line breaks are layout, not characters read)."""
    a, b = " ".join(truth.split()), " ".join(read.split())
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return 1 - previous[-1] / max(1, len(a))


def _text(data: bytes) -> tuple[str, Any, float]:
    started = time.perf_counter()
    loaded = load_pdf(data, DocMeta())
    return "\n".join(b.text for b in loaded.blocks), loaded, time.perf_counter() - started


def bench(pdfs: list[Path], dpis: list[int]) -> dict[str, Any]:
    rows = []
    for path in pdfs:
        original = path.read_bytes()
        truth, loaded, text_s = _text(original)
        n_pages = len({b.page for b in loaded.blocks})
        for dpi in dpis:
            read, scanned, ocr_s = _text(scan(original, dpi))
            rows.append(
                {
                    "pdf": path.name,
                    "pages": n_pages,
                    "scan_dpi": dpi,
                    "format": scanned.format,
                    "character_accuracy": round(character_accuracy(truth, read), 4),
                    "tesseract_confidence": scanned.meta.extra.get("ocr_confidence"),
                    "ocr_pages_per_s": round(n_pages / ocr_s, 3),
                    "text_layer_pages_per_s": round(n_pages / text_s, 3),
                    "ocr_slowdown": round(ocr_s / text_s, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return {"rows": rows, "mean_character_accuracy": _mean(r["character_accuracy"] for r in rows)}


def _mean(values: Any) -> float:
    values = list(values)
    return round(sum(values) / len(values), 4) if values else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdf", type=Path, action="append", help="text PDFs to scan and read")
    parser.add_argument("--dpi", type=int, action="append", help="scan resolutions (200)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    pdfs = args.pdf or [FIXTURES / name for name in DEFAULT_PDFS]
    result = bench(pdfs, args.dpi or [150, 200, 300])
    result["command"] = "python -m rag.eval.bench_ocr" + (f" --out {args.out}" if args.out else "")
    if args.out:
        write_json_atomic(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
