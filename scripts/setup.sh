#!/usr/bin/env bash
# Installs the Debian packages Nearly needs, only when something is missing.
set -euo pipefail
PKGS=(build-essential clang libjansson-dev libmicrohttpd-dev libroaring-dev
      libxxhash-dev libhnswlib-dev python3-dev python3-numpy python3-pytest
      python3-faiss curl nodejs npm wrk)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs/npm may come from elsewhere on a machine (e.g. a preinstalled node):
# accept any working node + npm instead of the Debian packages.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  tmp=()
  for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
