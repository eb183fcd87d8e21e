#!/usr/bin/env bash
# Install improv and what it needs: system packages (FluidSynth, JACK) and Python packages.
#   bash install.sh          the runtime and training
#   bash install.sh --test   the same plus the test tools
# Debian/Ubuntu with apt; run as root or with sudo available. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"

extras="plots"
[ "${1:-}" = "--test" ] && extras="plots,test"

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
if command -v apt-get >/dev/null; then
  need=()
  for pkg in libfluidsynth3 jackd2; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    echo "install.sh: installing system packages: ${need[*]}"
    $SUDO apt-get update -qq
    # noninteractive: jackd2 otherwise asks about realtime priority
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${need[@]}" >/dev/null
  fi
else
  echo "install.sh: no apt-get; install FluidSynth and a JACK server with your package manager" >&2
fi

python3 -m pip install --quiet --disable-pip-version-check -e ".[${extras}]"
# pyenv only sees new console scripts after a rehash
command -v pyenv >/dev/null && pyenv rehash || true
echo "install.sh: done ($(improv --version 2>/dev/null || echo 'improv not on PATH'))"
