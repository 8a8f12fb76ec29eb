# shellcheck shell=bash
# scripts/deps.sh — the one list of Debian packages jobmon needs, and install_deps to get them.
# Sourced by scripts/stack, scripts/demo and scripts/test-all (never run directly).
# install_deps is idempotent: it asks dpkg what is missing and runs `apt-get update` + install
# only when something is, so it is silent and takes ~0.1 s on a machine that has everything.

# Build + unit tests + sanitizers + formatting (libclang-rt-dev: the ASan/UBSan runtimes, which
# clang only recommends and --no-install-recommends leaves out).
JM_DEPS_BUILD=(build-essential autoconf automake libtool pkg-config
    librdkafka-dev libpq-dev libjansson-dev libhiredis-dev libconfuse-dev check
    libxxhash-dev uuid-dev valgrind clang libclang-rt-dev clang-format)
# The local stack (scripts/stack): PostgreSQL 15, Redis 7, Kafka from Maven Central, kcat.
JM_DEPS_STACK=(postgresql redis-server kcat maven openjdk-17-jre-headless)
# Only with --slurm (scripts/stack up --slurm: the Slurm plugin's single-node cluster).
JM_DEPS_SLURM=(slurm-wlm munge)

# jm_deps_missing PKG... — print the packages that are not installed, one per line.
jm_deps_missing()
{
    local p
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
            echo "$p"
        fi
    done
}

# install_deps [--slurm] — install whatever of the lists above is missing.
install_deps()
{
    local pkgs=("${JM_DEPS_BUILD[@]}" "${JM_DEPS_STACK[@]}")
    if [[ "${1:-}" == "--slurm" ]]; then
        pkgs+=("${JM_DEPS_SLURM[@]}")
    fi
    local missing
    mapfile -t missing < <(jm_deps_missing "${pkgs[@]}")
    if ((${#missing[@]} == 0)); then
        return 0
    fi
    local sudo=()
    if ((EUID != 0)); then
        sudo=(sudo)
    fi
    echo "deps: installing ${missing[*]}" >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
    mapfile -t missing < <(jm_deps_missing "${pkgs[@]}")
    if ((${#missing[@]} != 0)); then
        echo "deps: still missing after apt-get install: ${missing[*]}" >&2
        return 1
    fi
}
