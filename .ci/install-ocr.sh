#!/usr/bin/env bash
# Debian's Tesseract OCR engine for scanned PDF pages (rag/ingest/ocr.py) and its tests.
# Skipped when already installed.
set -euo pipefail
if command -v tesseract >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends tesseract-ocr tesseract-ocr-eng >/dev/null
