#!/usr/bin/env bash
# Installs the Debian packages listed in debian-packages.txt that are missing.
# Needs root (or sudo) only when something is missing; prints what it does.
set -euo pipefail
cd "$(dirname "$0")/.."

python=$(command -v python3.11 || command -v python3 || true)
if [ -z "$python" ]; then
  echo "system_deps: Python 3.11 is required (apt-get install python3.11)" >&2
  exit 1
fi

wanted=()
while read -r line; do
  pkg=${line%%#*}
  pkg=$(echo "$pkg" | xargs)
  [ -n "$pkg" ] && wanted+=("$pkg")
done < debian-packages.txt
# venv support comes as its own package on Debian's Python.
if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  wanted+=("python3-venv")
fi

missing=()
for pkg in "${wanted[@]+"${wanted[@]}"}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "system_deps: missing packages ${missing[*]} and no apt-get to install them" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "system_deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
