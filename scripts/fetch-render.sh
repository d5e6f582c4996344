#!/usr/bin/env bash
# MuJoCo's offscreen renderer for the run folder's clip and `esenas eval --video` (issue 15):
# Mesa's EGL (surfaceless, no X server; what esenas picks first) and OSMesa (the fallback:
# MUJOCO_GL=osmesa), both from Debian, installed non-interactively when missing.
# Rendering is optional: without root this only says what to install, and exits 0, because a run
# on a machine without them still trains and notes in its summary why it has no clip.
set -euo pipefail
PACKAGES=(libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "note: no offscreen rendering until these Debian packages are installed: ${missing[*]}" \
         "(as root: apt-get install -y --no-install-recommends ${missing[*]})" >&2
    exit 0
  fi
fi
echo "offscreen rendering: ${PACKAGES[*]} installed (MUJOCO_GL=egl, or osmesa)"
