#!/usr/bin/env bash
# Debian chromium for the Playwright browser tests (Playwright's own browser download does not
# work offline). Skipped when already installed.
set -euo pipefail
exec bash "$(dirname "$0")/apt-install.sh" chromium chromium fonts-dejavu-core
