#!/usr/bin/env bash
# Builds the operator, aggregator and worker images with buildah: no daemon, no registry.
#
#   scripts/build-images.sh [IMAGE...]        (default: operator aggregator worker)
#
# - Base: a Debian bookworm + Python 3.11 root filesystem made offline with mmdebstrap and imported
#   with buildah (localhost/esenas-base). PYTHON_IMAGE=python:3.11-slim uses a registry base instead.
# - Wheels: the image's lock (requirements/<image>.txt) is downloaded on this host and mounted into
#   the build's RUN steps at /wheels, which install with --no-index (a RUN step has no pip config).
# - Cache: by a hash of the inputs (the Dockerfile, the lock, the package sources COPY'd into the
#   image, the base image and this script) under $CACHE/images/<image>-<hash>/:
#   the OCI archive (image.tar), the unpacked runtime bundle (bundle/rootfs, for runc), the digest
#   and a CycloneDX SBOM. Unchanged inputs: no build at all. buildah's own layer cache (--layers)
#   makes a sources-only change reinstall just the package, not the wheels.
# - Outputs in the repo (git-ignored): build/images/<image>.tar (OCI archive, for `kind load
#   image-archive` / `k3d image import`), <image>.cdx.json, and images.json, which tests/simcluster
#   reads to run pods as containers.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
CACHE=${ESENAS_IMAGES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/esenas-images}
OUT=$REPO/build/images
VERSION=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' helm/esenas/Chart.yaml)
REGISTRY=${IMAGE_REGISTRY:-ghcr.io/esenas-fleet}
PY=${PY:-$REPO/.venv/bin/python}
# Build-time only, for `pip install /src` (pyproject's build-system) with --no-index.
BUILD_DEPS=(setuptools==80.9.0 wheel==0.45.1)
IMAGES=("$@")
(( ${#IMAGES[@]} )) || IMAGES=(operator aggregator worker)

scripts/fetch-image-tools.sh
mkdir -p "$CACHE"/{storage,run,base,wheels,images,ctx} "$OUT"
BUILDAH=(buildah --root "$CACHE/storage" --runroot "$CACHE/run" --storage-driver overlay)
exec 9>"$CACHE/lock"
flock 9  # one build at a time per cache (parallel `make images` would race on the storage)

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }

dir_of() { case $1 in worker) echo worker_image ;; *) echo "$1" ;; esac; }

# --- the base image --------------------------------------------------------------------------
BASE_RECIPE=(--variant=minbase --include=python3,python3-venv
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  --aptopt='Acquire::Check-Valid-Until "false"'
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  bookworm)
BASE_SOURCES=("deb http://deb.debian.org/debian bookworm main"
  "deb http://deb.debian.org/debian bookworm-updates main"
  "deb http://deb.debian.org/debian-security bookworm-security main")
if [[ -n ${PYTHON_IMAGE:-} ]]; then
  BASE=$PYTHON_IMAGE
  "${BUILDAH[@]}" pull --quiet "$BASE" >/dev/null
else
  key=$(printf '%s\n' "${BASE_RECIPE[@]}" "${BASE_SOURCES[@]}" | sha256sum | cut -c1-12)
  BASE=localhost/esenas-base:bookworm-$key
  if ! "${BUILDAH[@]}" inspect --type image "$BASE" >/dev/null 2>&1; then
    log "base: mmdebstrap bookworm (python3) -> $BASE"
    tar_file=$CACHE/base/bookworm-$key.tar
    [[ -s $tar_file ]] || mmdebstrap --quiet --mode=root --format=tar "${BASE_RECIPE[@]}" "$tar_file.part" \
      "${BASE_SOURCES[@]}" > "$CACHE/base/mmdebstrap.log" 2>&1 \
      || { tail -30 "$CACHE/base/mmdebstrap.log" >&2; exit 1; }
    [[ -s $tar_file ]] || mv "$tar_file.part" "$tar_file"
    ctr=$("${BUILDAH[@]}" from scratch)
    "${BUILDAH[@]}" add --quiet "$ctr" "$tar_file" /
    "${BUILDAH[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      --env LANG=C.UTF-8 --cmd '["python3"]' \
      --label org.opencontainers.image.title=esenas-base \
      --label org.opencontainers.image.description="Debian bookworm minbase + python3 (mmdebstrap)" "$ctr"
    "${BUILDAH[@]}" commit --quiet --rm "$ctr" "$BASE" >/dev/null
  fi
fi
BASE_ID=$("${BUILDAH[@]}" inspect --type image --format '{{.FromImageID}}' "$BASE")

# --- one image ---------------------------------------------------------------------------------
# Everything the Dockerfile COPYs, as git sees it (tracked and untracked, not ignored files):
# both the build context and the cache key, so they cannot disagree.
context_files() {
  local img=$1 dir
  dir=$(dir_of "$img")
  git ls-files -z --cached --others --exclude-standard -- "requirements/$img.txt" core "$dir" \
    | while IFS= read -r -d '' f; do [[ -f $f ]] && printf '%s\0' "$f"; done | sort -z
}

build_one() {
  local img=$1 dir key dest ref ctx started
  dir=$(dir_of "$img")
  ref=$REGISTRY/$img:$VERSION
  key=$({ sha256sum scripts/build-images.sh; echo "base $BASE_ID ref $ref"
          context_files "$img" | xargs -0 sha256sum; } | sha256sum | cut -c1-16)
  dest=$CACHE/images/$img-$key
  if [[ -f $dest/done ]]; then
    log "$img: cached ($dest)"
  else
    started=$(date +%s)
    log "$img: building $ref (inputs $key)"
    "$PY" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
      --dest "$CACHE/wheels" -r "requirements/$img.txt" "${BUILD_DEPS[@]}" 2> >(grep -v '^WARNING: Location' >&2)
    ctx=$CACHE/ctx/$img
    rm -rf "$ctx" "$dest" && mkdir -p "$ctx" "$dest"
    context_files "$img" | tar -c --null -T - -f - | tar -x -C "$ctx"
    "${BUILDAH[@]}" bud --quiet --isolation chroot --layers --format oci --pull=false \
      --volume "$CACHE/wheels:/wheels:ro" \
      --build-arg PYTHON_IMAGE="$BASE" --build-arg WHEELS=/wheels \
      -f "$ctx/$dir/Dockerfile" -t "$ref" "$ctx" >/dev/null
    rm -rf "$ctx"
    export_image "$img" "$ref" "$dest" "$started"
  fi
  publish "$img" "$ref" "$dest"
}

# The built image $2 into its cache folder $3: OCI archive, unpacked bundle, digest, SBOM, config.
export_image() {
  local img=$1 ref=$2 dest=$3 started=$4
  "${BUILDAH[@]}" push --quiet --digestfile "$dest/digest" "$ref" "oci:$dest/oci:$ref"
  tar -C "$dest/oci" -cf "$dest/image.tar" .
  umoci unpack --image "$dest/oci:$ref" "$dest/bundle" >/dev/null
  rm -rf "$dest/oci"  # image.tar holds the same layout
  sbom "$img" "$dest"
  "${BUILDAH[@]}" inspect --type image "$ref" > "$dest/inspect.json"
  du -sb "$dest/bundle/rootfs" | cut -f1 > "$dest/rootfs-bytes"
  echo $(( $(date +%s) - started )) > "$dest/build-seconds"
  touch "$dest/done"
  # Keep this build and the two before it (other checkouts sharing the cache may still run them).
  ls -1dt "$CACHE/images/$img"-* | tail -n +4 | xargs -r rm -rf
  log "$img: built in $(cat "$dest/build-seconds") s, digest $(cat "$dest/digest")"
}

# A cached build $3 as build/images/$1.tar and .cdx.json, listed for images.json.
publish() {
  local img=$1 ref=$2 dest=$3
  ln -f "$dest/image.tar" "$OUT/$img.tar" 2>/dev/null || cp "$dest/image.tar" "$OUT/$img.tar"
  cp "$dest/sbom.cdx.json" "$OUT/$img.cdx.json"
  printf '%s\t%s\t%s\t%s\n' "$img" "$ref" "$(cat "$dest/digest")" "$dest" >> "$OUT/.images.tsv"
}

# A CycloneDX SBOM of the image's Python environment (cyclonedx-py reads the venv's metadata
# from the unpacked root filesystem; the Debian packages of the base are listed by dpkg).
# The SBOM's root component is the image's deployable (its pyproject.toml), or for an image of a
# user's own environment (build-env-image.sh sets PKG) that package's, when it has one.
sbom() {
  local img=$1 dest=$2 root
  root=$(dir_of "$img")/pyproject.toml
  [[ -f $root ]] || root=${PKG:-/nonexistent}/pyproject.toml
  local args=()
  [[ -f $root ]] && args=(--pyproject "$root")
  "$(dirname "$PY")/cyclonedx-py" environment --output-format JSON --output-file "$dest/sbom.cdx.json" \
    "${args[@]}" "$dest/bundle/rootfs/opt/esenas" 2>/dev/null \
    || { echo "cyclonedx-py failed for $img (are the dev requirements installed?)" >&2; return 1; }
}

# images.json from the builds of this run (.images.tsv), merged with the ones already listed.
write_images_json() {
  "$PY" - "$OUT" <<'PYEOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
images = json.loads((out / "images.json").read_text()) if (out / "images.json").exists() else {}
for line in (out / ".images.tsv").read_text().splitlines():
    name, ref, digest, dest = line.split("\t")
    d = Path(dest)
    images[name] = {
        "ref": ref, "digest": digest, "archive": str(out / f"{name}.tar"), "cache": dest,
        "rootfs": str(d / "bundle" / "rootfs"), "config": json.loads((d / "inspect.json").read_text())["OCIv1"]["config"],
        "rootfsBytes": int((d / "rootfs-bytes").read_text()), "archiveBytes": (d / "image.tar").stat().st_size,
        "buildSeconds": int((d / "build-seconds").read_text()),
    }
(out / "images.json").write_text(json.dumps(images, indent=2, sort_keys=True) + "\n")
(out / ".images.tsv").unlink()
for name, i in sorted(images.items()):
    print(f"{name:10} {i['ref']}@{i['digest']}  rootfs {i['rootfsBytes'] / 1e6:.0f} MB, "
          f"archive {i['archiveBytes'] / 1e6:.0f} MB  {i['archive']}")
PYEOF
}

# buildah's layer cache grows with every build; past 6 GiB drop what no tag holds (the next
# sources-only change then reinstalls the wheels once).
prune_storage() {
  if (( $(du -sm "$CACHE/storage" | cut -f1) > 6144 )); then
    log "pruning buildah storage ($(du -sh "$CACHE/storage" | cut -f1))"
    "${BUILDAH[@]}" rmi --prune >/dev/null || true
  fi
}

main() {
  rm -f "$OUT/.images.tsv"
  for img in "${IMAGES[@]}"; do
    build_one "$img"
  done
  prune_storage
  write_images_json
}

# Sourced (scripts/build-env-image.sh): the setup above and the functions, without building.
[[ ${BASH_SOURCE[0]} != "$0" ]] || main
