#!/usr/bin/env bash
# Debian's Chromium for the Panel app tests (Playwright drives /usr/bin/chromium; it never
# downloads a browser of its own). Uses sudo when not root; does nothing when present.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
