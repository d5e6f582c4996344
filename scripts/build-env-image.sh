#!/usr/bin/env bash
# Builds worker and aggregator images that hold a user's own environment package, with the
# project's image tooling (buildah, no daemon, no registry; docs/own-environment.md):
#
#   scripts/build-env-image.sh PATH/TO/PACKAGE      (or: make env-image PKG=PATH/TO/PACKAGE)
#
# For each of worker and aggregator: the project's image (scripts/build-images.sh, cached), then
# scripts/env-image.Dockerfile FROM it with the package folder as the build context, installed
# offline from the same wheel folder (build backend included). Cached by a hash of the package's
# files (as git lists them), the Dockerfile, both scripts and the base image's digest; the
# outputs are those of build-images.sh: build/images/<package>-<image>.tar (OCI archive), its SBOM,
# and an entry in build/images/images.json (which the simulated cluster's container mode reads).
# The images are named $ENV_IMAGE_REGISTRY/<package>/<image>:<version> (default localhost/...):
# set spec.workers.image and spec.aggregator.image to them.
set -euo pipefail
(( $# == 1 )) && [[ -f $1/pyproject.toml || -f $1/setup.py ]] \
  || { echo "usage: $0 PATH/TO/PACKAGE (a folder with pyproject.toml or setup.py)" >&2; exit 2; }
PKG=$(cd "$1" && pwd)
set --
# shellcheck source=build-images.sh
source "$(dirname "$0")/build-images.sh"   # setup and functions only (cd to the repo, the lock, the base)
NAME=$(basename "$PKG" | tr '[:upper:]_' '[:lower:]-')

# The package's files: git's view when it is in a work tree (not ignored: no build/, *.egg-info),
# else every file but those.
package_files() {
  if git -C "$PKG" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$PKG" ls-files -z --cached --others --exclude-standard -- . \
      | while IFS= read -r -d '' f; do [[ -f $PKG/$f ]] && printf '%s\0' "$f"; done | sort -z
  else
    (cd "$PKG" && find . -type f -not -path './build/*' -not -path '*.egg-info/*' -not -path '*/__pycache__/*' -print0 | sort -z)
  fi
}

build_env_one() {
  local img=$1 base_ref base_digest ref key dest ctx started
  base_ref=$REGISTRY/$img:$VERSION
  base_digest=$(cat "$(awk -F'\t' -v i="$img" '$1 == i { print $4 }' "$OUT/.images.tsv")/digest")
  ref=${ENV_IMAGE_REGISTRY:-localhost}/$NAME/$img:$VERSION
  key=$({ sha256sum scripts/build-images.sh scripts/build-env-image.sh scripts/env-image.Dockerfile
          echo "base $base_ref@$base_digest ref $ref"
          (cd "$PKG" && package_files | xargs -0 -r sha256sum); } | sha256sum | cut -c1-16)
  dest=$CACHE/images/$NAME-$img-$key
  if [[ -f $dest/done ]]; then
    log "$NAME-$img: cached ($dest)"
  else
    started=$(date +%s)
    log "$NAME-$img: building $ref from $base_ref (inputs $key)"
    ctx=$CACHE/ctx/$NAME-$img
    rm -rf "$ctx" "$dest" && mkdir -p "$ctx" "$dest"
    (cd "$PKG" && package_files | tar -c --null -T - -f -) | tar -x -C "$ctx"
    "${BUILDAH[@]}" bud --quiet --isolation chroot --layers --format oci --pull=false \
      --volume "$CACHE/wheels:/wheels:ro" --build-arg BASE="$base_ref" --build-arg WHEELS=/wheels \
      -f "$REPO/scripts/env-image.Dockerfile" -t "$ref" "$ctx" >/dev/null
    rm -rf "$ctx"
    export_image "$NAME-$img" "$ref" "$dest" "$started"
  fi
  publish "$NAME-$img" "$ref" "$dest"
}

rm -f "$OUT/.images.tsv"
build_one worker && build_one aggregator   # the project's images first (cached), then FROM them
build_env_one worker
build_env_one aggregator
prune_storage
write_images_json
