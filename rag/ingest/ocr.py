"""OCR for PDF pages without a text layer (scans): rendered by pdfium, read by Tesseract.

A page that carries text keeps it; only a page with no characters at all is rendered
(``pypdfium2``, which pdfplumber already brings) and read by the Tesseract engine through
``pytesseract``. Tesseract's own layout analysis gives blocks and paragraphs; each paragraph
keeps its page number, and the document is marked ``pdf-ocr`` with the OCR'd pages listed in
its metadata (``ocr_pages``), so a user knows a quote came from OCR.

Tesseract is a system program (Debian: ``apt-get install tesseract-ocr tesseract-ocr-eng``);
without it, a scanned page fails with a message that says how to install it.
"""

from __future__ import annotations

import shutil
import statistics
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from rag.errors import CorruptFileError, EmptyDocumentError
from rag.ingest.pdf_layout import Para

DPI = 300  # Tesseract reads body text best at about 300 dpi
LANG = "eng"
MIN_CONFIDENCE = 30  # words Tesseract itself rates below this are noise (specks, rules)
# Pages read by OCR per document at most: a scan of a long book is out of scope, and a
# hostile PDF of thousands of empty pages must not buy hours of OCR.
MAX_OCR_PAGES = 200
INSTALL_HINT = (
    "install Tesseract OCR (Debian/Ubuntu: apt-get install tesseract-ocr tesseract-ocr-eng)"
)


# Who hears "page 3 of 12 read": set by the indexer around a file (in the sandboxed parser
# process, by the worker, which forwards each page to the indexer). A scan takes seconds a page.
PageProgress = Callable[[int, int], None]  # pages read, pages to read
page_progress: ContextVar[PageProgress | None] = ContextVar("page_progress", default=None)


class OcrUnavailableError(EmptyDocumentError):
    """A page needs OCR and the Tesseract engine is not installed."""


@dataclass(frozen=True, slots=True)
class OcrPage:
    page: int  # 1-based
    paras: list[Para]
    words: int
    mean_confidence: float


def available() -> bool:
    return shutil.which("tesseract") is not None


def require() -> None:
    if not available():
        raise OcrUnavailableError(
            f"PDF has pages without a text layer (a scan); reading them needs OCR: {INSTALL_HINT}"
        )


def ocr_pages(
    data: bytes,
    pages: list[int],
    *,
    dpi: int = DPI,
    lang: str = LANG,
    progress: PageProgress | None = None,
) -> list[OcrPage]:
    """Paragraphs read by OCR from ``pages`` (1-based) of the PDF in ``data``.

    ``progress`` (default: whoever set ``page_progress``) hears each page as it is read.
    """
    import pypdfium2 as pdfium
    import pytesseract

    require()
    progress = progress or page_progress.get()
    if progress is not None:
        progress(0, len(pages))
    if len(pages) > MAX_OCR_PAGES:
        raise EmptyDocumentError(
            f"PDF has {len(pages)} pages without a text layer; OCR reads at most "
            f"{MAX_OCR_PAGES} per document (split the scan first)"
        )
    out: list[OcrPage] = []
    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise CorruptFileError(f"PDF cannot be rendered for OCR: {exc}") from exc
    try:
        for done, number in enumerate(pages, start=1):
            try:
                page = document[number - 1]
                try:
                    image = page.render(scale=dpi / 72, grayscale=True).to_pil()
                finally:
                    page.close()
                low, high = image.getextrema()
                if high - low < 16:  # a blank page: nothing to read
                    out.append(OcrPage(number, [], 0, 0.0))
                else:
                    out.append(read_image(image, number, dpi=dpi, lang=lang))
            except (pdfium.PdfiumError, pytesseract.TesseractError) as exc:
                raise CorruptFileError(f"page {number} cannot be read by OCR: {exc}") from exc
            if progress is not None:
                progress(done, len(pages))
    finally:
        document.close()
    return out


def read_image(image: Any, page: int, *, dpi: int = DPI, lang: str = LANG) -> OcrPage:
    """One page image as paragraphs, in Tesseract's reading order."""
    import pytesseract

    data = pytesseract.image_to_data(
        image, lang=lang, config="--psm 3", output_type=pytesseract.Output.DICT
    )
    groups: dict[tuple[int, int], dict[int, list[int]]] = {}
    for i, word in enumerate(data["text"]):
        if not word.strip() or float(data["conf"][i]) < MIN_CONFIDENCE:
            continue
        key = (data["block_num"][i], data["par_num"][i])
        groups.setdefault(key, {}).setdefault(data["line_num"][i], []).append(i)
    paras: list[Para] = []
    confidences: list[float] = []
    for lines in groups.values():
        words = [i for line in lines.values() for i in line]
        text = _join_lines([" ".join(data["text"][i] for i in line) for line in lines.values()])
        heights = [data["height"][i] for i in words]
        size = statistics.median(heights) * 72 / dpi  # pixel height of a word, in points
        paras.append(Para(text, page, round(size, 1), False, len(lines)))
        confidences += [float(data["conf"][i]) for i in words]
    mean = statistics.fmean(confidences) if confidences else 0.0
    return OcrPage(page, paras, len(confidences), round(mean, 1))


def _join_lines(lines: list[str]) -> str:
    """A paragraph's lines as one string; a line ending in a hyphen runs into the next without
    a space ("non-" + "small" -> "non-small": a real hyphen is kept, a soft one shows)."""
    text = ""
    for line in lines:
        if text.endswith("-") and line[:1].islower():
            text += line
        else:
            text = f"{text} {line}" if text else line
    return text
