#!/usr/bin/env bash
# Install improv and what it needs: system packages (FluidSynth, JACK) and Python packages.
#   bash install.sh          the runtime (run, demo, generate, ports, bench engine, data)
#   bash install.sh --train  the runtime plus training (TensorFlow, pandas, matplotlib)
#   bash install.sh --test   the runtime, training and the test tools
# Python packages go into the active virtual environment if there is one, else into .venv
# here (made with python3 -m venv); either way .venv/bin/improv runs the installed command.
# A virtual environment is what Debian's own Python asks for (PEP 668), and it works as root.
# Debian/Ubuntu with apt; run as root or with sudo available. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"

extras=""
for arg in "$@"; do
  case "$arg" in
    --train) extras="train" ;;
    --test) extras="train,test" ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option $arg (use --train or --test)" >&2; exit 2 ;;
  esac
done

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
need=()
if command -v apt-get >/dev/null; then
  for pkg in libfluidsynth3 jackd2; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  # Debian's python3 makes virtual environments only with python3-venv (ensurepip)
  if [ -z "${VIRTUAL_ENV:-}" ] && [ ! -x .venv/bin/python ] \
      && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    need+=("python3-venv")
  fi
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

if [ -n "${VIRTUAL_ENV:-}" ]; then
  # An active environment: install there, and let .venv name it so the README's commands work.
  venv="$VIRTUAL_ENV"
  if [ -L .venv ] || [ ! -e .venv ]; then
    ln -sfn "$venv" .venv
  elif [ "$(cd .venv && pwd -P)" != "$(cd "$venv" && pwd -P)" ]; then
    echo "install.sh: .venv here is another environment than the active one ($venv);" \
         "remove .venv or deactivate, then run again" >&2
    exit 1
  fi
else
  venv=.venv
  if [ ! -x .venv/bin/python ]; then
    echo "install.sh: making a virtual environment in .venv ($(python3 --version))"
    python3 -m venv .venv
  fi
fi

target=".${extras:+[$extras]}"
echo "install.sh: installing improv${extras:+[$extras]} into $venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$target"
echo "install.sh: done ($(.venv/bin/improv --version)); run it as .venv/bin/improv," \
     "or activate the environment: . .venv/bin/activate"
