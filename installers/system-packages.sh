#!/usr/bin/env bash
# System packages surgtwin needs on Debian 12: Xvfb and the xcb/GL libraries that
# Qt and VTK load (for the desktop app and its tests), and GNU OpenMP, numba's thread-safe
# threading layer for the simulation kernels. Installs only what is missing.
set -euo pipefail

PACKAGES=(
  xvfb xauth libgomp1
  libgl1 libegl1 libglu1-mesa libxrender1 libxt6 libx11-xcb1
  libxkbcommon0 libxkbcommon-x11-0 libdbus-1-3 libfontconfig1
  libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-cursor0
  libxcb-image0 libxcb-render-util0 libxcb-randr0 libxcb-shape0 libxcb-xkb1
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "surgtwin setup: not a Debian system; please install: ${missing[*]}" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "surgtwin setup: installing system packages: ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
