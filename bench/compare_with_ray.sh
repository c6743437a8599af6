#!/usr/bin/env bash
# Runs Ray's `ray microbenchmark` and raykit-bench on this machine and prints one table:
# metric, Ray, raykit, ratio.
#
#   bench/compare_with_ray.sh                 # install Ray in target/ray-venv, run both
#   RAY_OUTPUT=file bench/compare_with_ray.sh # reuse a saved `ray microbenchmark` output
#   RAYKIT_JSON=file bench/compare_with_ray.sh  # reuse a saved `raykit-bench --json` report
#
# Ray sleeps 10 s before each metric and measures for 9 s, so its part takes about 10 minutes.
# Ray's Ray-Client metrics ("client: ...") are skipped (TESTS_TO_SKIP, Ray's own switch):
# raykit has no client mode. Files written: target/ray-microbenchmark.txt (Ray's output),
# target/ray-figures.json (Ray's figures by raykit metric name), target/raykit-bench.json.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$target/ray-venv"
ray_out="${RAY_OUTPUT:-$target/ray-microbenchmark.txt}"
ray_json="$target/ray-figures.json"
raykit_json="${RAYKIT_JSON:-$target/raykit-bench.json}"
mkdir -p "$target"

if [[ -z "${RAY_OUTPUT:-}" ]]; then
    if [[ ! -x "$venv/bin/ray" ]]; then
        echo "== creating $venv and installing ray (pip)" >&2
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --upgrade pip
        "$venv/bin/pip" install --quiet "ray[client]" numpy  # ray_perf.py imports numpy and grpc
    fi
    echo "== ray $("$venv/bin/python" -c 'import ray; print(ray.__version__)'): ray microbenchmark (about 10 minutes)" >&2
    # `ray microbenchmark` starts (and stops) a local Ray instance of its own.
    # Its last part (Ray Client) starts a server per benchmark even when skipped, and may fail
    # to on a loaded machine: the figures printed before that still count.
    status=0
    TESTS_TO_SKIP="${TESTS_TO_SKIP:-client:}" "$venv/bin/ray" microbenchmark >"$ray_out" 2>&1 || status=$?
    grep " per second " "$ray_out" >&2 || true
    if [[ $status -ne 0 ]]; then
        echo "== ray microbenchmark exited with status $status (see $ray_out); using the figures it printed" >&2
    fi
fi

python=python3
[[ -x "$venv/bin/python" ]] && python="$venv/bin/python"

# Ray prints "NAME per second MEAN +- SD"; the metric names of raykit-bench are Ray's names in
# lower case with ':', ' ' and '-' as '_' and "(Plasma Store)" dropped.
"$python" - "$ray_out" "$ray_json" <<'EOF'
import json, re, sys
figures = {}
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    m = re.match(r"^(.*?) per second ([0-9.eE+-]+) \+- ([0-9.eE+-]+)\s*$", line.strip())
    if not m:
        continue
    name = m.group(1).strip()
    if name.endswith("(Plasma Store)"):
        name = name[: -len("(Plasma Store)")].strip()
    name = re.sub(r"[: -]", "_", name.lower())
    figures[name] = float(m.group(2))
if not figures:
    sys.exit(f"no Ray figures found in {sys.argv[1]}")
json.dump(figures, open(sys.argv[2], "w"), indent=1, sort_keys=True)
EOF

if [[ -z "${RAYKIT_JSON:-}" ]]; then
    echo "== raykit-bench (release)" >&2
    cargo run --release -p raykit-bench -- --json --ray-json "$ray_json" ${RAYKIT_BENCH_ARGS:-} >"$raykit_json"
fi

"$python" - "$ray_json" "$raykit_json" <<'EOF'
import json, sys
ray = json.load(open(sys.argv[1]))
report = json.load(open(sys.argv[2]))
rows = report.get("metrics", [])
def fmt(x):
    if x is None:
        return "-"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.2f}"
print(f"{'metric':<46} {'Ray':>12} {'raykit':>14} {'ratio':>10}  unit")
seen = set()
for r in rows:
    name = r["name"]
    seen.add(name)
    theirs = ray.get(name)
    ours = r["raykit"]["mean"]
    ratio = f"{ours / theirs:,.1f}x" if theirs else "-"
    print(f"{name:<46} {fmt(theirs):>12} {fmt(ours):>14} {ratio:>10}  {r['unit']}")
for name in sorted(set(ray) - seen):
    print(f"{name:<46} {fmt(ray[name]):>12} {'(no raykit equivalent)':>25}")
for t in report.get("targets", []):
    mark = {True: "met   ", False: "MISSED", None: "n/a   "}[t["met"]]
    print(f"target {mark} {t['what']}: {t['measured']}")
EOF
