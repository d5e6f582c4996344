#!/usr/bin/env bash
# bench/scale.py on a lent many-core machine (the workplace's device tool): "bash bench/device_scale.sh
# [stop32|stop33]" runs that stop's set (default: the latest).
#
# That machine has Python 3.12 and NumPy, but not MuJoCo, Gymnasium or this project's gRPC and
# protobuf versions, and no network. First, here, fetch those wheels into .whl/ (git-ignored, carried):
#
#   echo /.whl/ >> .git/info/exclude
#   P="--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
#   for pkg in mujoco==4.0.0 mujoco-core==4.0.0 mujoco-studio==4.0.0 gymnasium==1.4.0 farama-notifications==0.0.4 \
#              grpcio==1.85.1 grpcio-health-checking==1.85.1 protobuf==7.36.2 glfw==2.11.0 pyopengl==3.1.10; do
#     python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $P -d .whl $pkg
#   done
#
# then run this script there with .whl carried (device run: command "bash bench/device_scale.sh",
# carry [".whl"]). PYTHONSAFEPATH keeps bench/operator.py from shadowing the standard library's
# operator module under Python 3.12. Each run's log lands in $OUT.
set -u
export PYTHONSAFEPATH=1 PYTHONUNBUFFERED=1
ulimit -n 65536 2>/dev/null || ulimit -n 8192
echo "cpus $(nproc); $(python3 -V); ulimit -n $(ulimit -n)"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir .whl/*.whl
python3 -m pip install -q --no-index --no-deps --no-build-isolation --ignore-requires-python ./core ./aggregator ./worker_image ./cli
python3 -c "import mujoco, gymnasium, grpc, esenas_aggregator" || exit 1
out=${OUT:-/tmp}
run() {
  name=$1; t=$2; shift 2
  echo "== $name: bench/scale.py $*"
  timeout "$t" python3 bench/scale.py "$@" > "$out/$name.log" 2>&1
  echo "rc=$?"
  tail -1 "$out/$name.log" | cut -c1-1500
}
set32() {
  run w1k-fixed 100 --workers 1000 --iterations 8 --settled --pin --clients 15
  run w10k-relays8 230 --workers 10000 --iterations 6 --relays 8 --settled --pin --clients 7 --timeout 220
  run w1k-heavy32-relays4 150 --workers 1000 --iterations 6 --pairs-per-worker 32 --batch 2 --episodes heavy-tailed \
      --min-pairs-fraction 0.9 --relays 4 --settled --pin --clients 8 --timeout 140
}
# stop 33: where 10,000 workers' time past the ideal goes (barrier_s, finish_spread_s), with the
# simulated workers decoding topologies after their first sleep, and one relay per 1,000 workers.
set33() {
  run w1k-fixed 100 --workers 1000 --iterations 8 --settled --pin --clients 15
  run w10k-relays8 200 --workers 10000 --iterations 6 --relays 8 --settled --pin --clients 7 --timeout 190
  run w10k-relays10 200 --workers 10000 --iterations 6 --relays 10 --settled --pin --clients 5 --timeout 190
}
# and how late the simulated workers' sleeps end at 10,000 (sleep_late_ms_mean_p99)
late33() {
  run w10k-relays8-late 200 --workers 10000 --iterations 6 --relays 8 --settled --pin --clients 7 --timeout 190
}
# and the same 1,250 workers per relay with 455 instead of 1,430 simulated workers per client process
# (5,000 workers, 4 relays, 11 client processes): is the broadcast the relays' or the clients'?
split33() {
  run w5k-relays4-clients11 150 --workers 5000 --iterations 6 --relays 4 --settled --pin --clients 11 --timeout 140
}
# and 10,000 workers behind 8 relays left to the kernel's scheduler (no --pin): does pinning a relay's
# Python thread and its gRPC poller thread to one CPU slow its leases?
nopin33() {
  run w10k-relays8-nopin 200 --workers 10000 --iterations 6 --relays 8 --settled --clients 7 --timeout 190
}
case "${1:-stop33}" in
  nopin33) nopin33 ;;
  split33) split33 ;;
  stop32) set32 ;;
  late33) late33 ;;
  *) set33 ;;
esac
