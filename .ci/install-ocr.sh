#!/usr/bin/env bash
# Debian's Tesseract OCR engine for scanned PDF pages (rag/ingest/ocr.py) and its tests.
# Skipped when already installed.
set -euo pipefail
exec bash "$(dirname "$0")/apt-install.sh" tesseract tesseract-ocr tesseract-ocr-eng
