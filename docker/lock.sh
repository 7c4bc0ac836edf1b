#!/usr/bin/env bash
# Regenerate the image's hashed lock files (installed with `pip install --require-hashes --no-deps`).
#
#   docker/lock.sh                 # build, nodeps, cpu and cu130: what PyPI alone resolves
#   docker/lock.sh cu130           # the default GPU lock (PyPI's torch 2.14.1 is a CUDA 13.0 build)
#   docker/lock.sh cu126           # the optional P100 lock: needs https://download.pytorch.org/whl/cu126
#
# The GPU locks take every package they share with the cpu lock at the cpu lock's version (a
# constraint), so the image runs the stack the CPU tier tests; regenerate cpu first.
# Needs uv (pip install uv==0.13.9; UV=/path/to/uv to pick one). Each lock records every file
# hash of each pinned version, so it serves any x86_64 manylinux machine of its Python version.
# cpu needs the CPU torch wheel in docker/wheels/ (nox -s container copies it there).
set -euo pipefail
cd "$(dirname "$0")/.."
UV="${UV:-uv}"

compile() {  # compile <name> <python version> [uv args...]
    local name="$1" py="$2"
    shift 2
    "$UV" pip compile --quiet --generate-hashes --python-version "$py" \
        --python-platform x86_64-manylinux_2_31 \
        --custom-compile-command "docker/lock.sh $name" \
        -o "docker/requirements-$name.lock" "$@"
    echo "wrote docker/requirements-$name.lock"
}

# The cpu lock's pins, torch aside: the GPU locks' constraint file. A relative path, so that
# the locks' "# via -c ..." notes name no machine's temporary folder.
PINS=docker/cpu-pins.tmp
trap 'rm -f "$PINS"' EXIT
cpu_pins() {
    grep -E '^[A-Za-z0-9._-]+==' docker/requirements-cpu.lock | cut -d' ' -f1 \
        | grep -v -E '^torch==' >"$PINS"
}

for target in "${@:-build nodeps cpu cu130}"; do
    for name in $target; do
        case "$name" in
        build) compile build 3.11 docker/requirements-build.in ;;
        nodeps) compile nodeps 3.11 --no-deps docker/requirements-nodeps.in ;;
        cpu)
            if ! compgen -G "docker/wheels/torch-2.13.0+cpu-*.whl" >/dev/null; then
                echo "lock.sh cpu: put the CPU torch wheel in docker/wheels/ first" >&2
                exit 2
            fi
            compile cpu 3.11 pyproject.toml docker/requirements-cpu.in --extra smoke \
                -c docker/requirements-build.lock --find-links docker/wheels
            ;;
        cu130)
            cpu_pins
            compile cu130 3.11 pyproject.toml docker/requirements-cu130.in --extra gpu \
                --extra smoke -c docker/requirements-build.lock -c "$PINS" \
                --index-url https://pypi.org/simple
            ;;
        cu126)
            # torch's CUDA 12.6 builds live on PyTorch's index only; the locked hashes make
            # mixing the two indexes safe (pip accepts only the files whose hashes are in the lock).
            cpu_pins
            compile cu126 3.11 pyproject.toml docker/requirements-cu126.in --extra gpu \
                --extra smoke -c docker/requirements-build.lock -c "$PINS" \
                --index-url https://pypi.org/simple \
                --extra-index-url https://download.pytorch.org/whl/cu126 \
                --index-strategy unsafe-best-match --emit-index-url
            ;;
        *)
            echo "lock.sh: unknown lock '$name' (build, nodeps, cpu, cu130, cu126)" >&2
            exit 2
            ;;
        esac
    done
done
