#!/usr/bin/env bash
# Generates core/esenas_api/** from core/proto/** (python + .pyi stubs). The
# generated code is committed; `scripts/gen-protos.sh --check` (run by the test
# suite) fails when it has drifted from the .proto sources.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PY:-$ROOT/.venv/bin/python}
export PATH="$(dirname "$PY"):$PATH"  # protoc-gen-mypy plugins
OUT=$ROOT/core
check=0
if [[ "${1:-}" == "--check" ]]; then
  check=1
  OUT=$(mktemp -d)
  trap 'rm -rf "$OUT"' EXIT
fi
protos=$(cd core/proto && find esenas_api -name '*.proto' | sort)
(cd core/proto && "$PY" -m grpc_tools.protoc -I . \
  --python_out="$OUT" \
  --grpc_python_out="$OUT" \
  --mypy_out="$OUT" \
  --mypy_grpc_out="$OUT" \
  $protos)
# Packages for the generated modules (namespace-free, so mypy and setuptools see them).
for d in $(cd core/proto && find esenas_api -mindepth 1 -type d | sort); do
  if [[ ! -e "$OUT/$d/__init__.py" ]]; then
    echo '"""Generated protobuf and gRPC code; see core/proto/ and scripts/gen-protos.sh."""' > "$OUT/$d/__init__.py"
  fi
done
if [[ $check -eq 1 ]]; then
  # Compare only generated files (*_pb2*.py[i]), both ways, so a stale leftover fails too.
  fresh=$(cd "$OUT" && find esenas_api -path '*__pycache__*' -prune -o \( -name '*_pb2*.py' -o -name '*_pb2*.pyi' \) -print | sort)
  committed=$(cd core && find esenas_api -path '*__pycache__*' -prune -o \( -name '*_pb2*.py' -o -name '*_pb2*.pyi' \) -print | sort)
  status=0
  if [[ "$fresh" != "$committed" ]]; then
    echo "generated file set differs:" >&2
    diff <(echo "$fresh") <(echo "$committed") >&2 || true
    status=1
  fi
  for f in $fresh; do
    [[ -f core/$f ]] && { diff -q "$OUT/$f" "core/$f" >/dev/null || { echo "drifted: core/$f" >&2; status=1; }; }
  done
  if [[ $status -ne 0 ]]; then
    echo "core/esenas_api is out of date: run scripts/gen-protos.sh and commit" >&2
    exit 1
  fi
  echo "generated protobuf code is up to date"
fi
