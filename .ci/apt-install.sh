#!/usr/bin/env bash
# apt-install.sh COMMAND PACKAGE...: install Debian PACKAGEs unless COMMAND is already on PATH.
set -euo pipefail
command="$1"
shift
if command -v "$command" >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
