#!/bin/sh
# Container entry point: `crosspose serve --config "$CROSSPOSE_CONFIG"`, after checking the config file
# is there and readable (so a missing mount fails with a message, not a traceback).
# With arguments it runs that crosspose command instead, e.g. `grab --camera cam4 …` on a camera host
# or `config validate /etc/crosspose/config.yaml`.
#
# As PID 1 (`docker run` without --init; compose sets `init: true`) it re-executes itself under tini:
# PID 1 must reap orphaned processes and pass signals on. (Before the supervisor compared a stage's
# parent with its own pid, its stages also took a parent of PID 1 for "the supervisor died" and exited.)
set -eu

if [ "$$" -eq 1 ] && [ -z "${CROSSPOSE_INIT:-}" ] && command -v tini >/dev/null 2>&1; then
    export CROSSPOSE_INIT=tini   # (once: never loops, whatever PID the second run gets)
    exec tini -- "$0" "$@"      # runs this script again, as tini's child (not PID 1)
fi

if [ "$#" -gt 0 ]; then
    exec crosspose "$@"
fi

config="${CROSSPOSE_CONFIG:-}"
if [ -z "$config" ]; then
    echo "crosspose: CROSSPOSE_CONFIG is not set; point it at the service config (YAML)" >&2
    exit 64
fi
if [ ! -e "$config" ]; then
    echo "crosspose: no service config at $config (CROSSPOSE_CONFIG)." >&2
    echo "  Mount one, e.g. -v \"\$PWD/config.yaml:$config:ro\", starting from deploy/config.example.yaml;" >&2
    echo "  see deploy/README.md." >&2
    exit 66
fi
if [ ! -f "$config" ] || [ ! -r "$config" ]; then
    echo "crosspose: $config (CROSSPOSE_CONFIG) is not a readable file for user $(id -u)." >&2
    echo "  Make it readable by that user (e.g. chmod a+r), or mount the file itself, not a folder." >&2
    exit 66
fi

exec crosspose serve --config "$config"
