#!/usr/bin/env bash
# A local Dask cluster (one scheduler + N single-threaded workers) for the preprocessing job.
#
#   cluster/local-cluster.sh start N [--port P] [--dashboard-port D] [--dir DIR]
#                                    [--memory-limit LIMIT] [--timeout SECONDS]
#   cluster/local-cluster.sh stop    [--dir DIR] [--timeout SECONDS]
#   cluster/local-cluster.sh status  [--dir DIR]
#   cluster/local-cluster.sh address [--dir DIR]     (prints the scheduler address)
#
# Everything listens on 127.0.0.1 only. Port 0 means "pick a free port"; the real address is
# then read back from the scheduler file. PIDs, logs, the scheduler file and the workers'
# scratch space live in DIR (default: .dask-cluster/ in the current directory).
#
# Point the job at the cluster with
#   splendor-il preprocess --scheduler-address "$(cluster/local-cluster.sh address)" ...
# or export DASK_SCHEDULER_ADDRESS to the address printed by `start`. The scheduler and the
# workers run with the Dask settings of cluster/dask.env (give them to the job too:
# `set -a; . cluster/dask.env; set +a`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if command -v uv >/dev/null 2>&1; then
    DASK=(uv run --project "$ROOT" dask)
    PYTHON=(uv run --project "$ROOT" python)
else
    DASK=(dask)
    PYTHON=(python3)
fi

die() {
    echo "local-cluster: $*" >&2
    exit 1
}

usage() {
    sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

is_uint() {
    [[ "$1" =~ ^[0-9]+$ ]]
}

# --- process helpers -------------------------------------------------------------------

# True while the process $1, or any member of the process group it leads, is alive (zombies
# do not count: the launched processes are reparented and may wait to be reaped).
alive() {
    ps -e -o pid=,pgid=,stat= |
        awk -v p="$1" '($1 == p || $2 == p) && $3 !~ /^Z/ { found = 1 } END { exit !found }'
}

# Send signal $1 to the process group led by $2 (started through setsid), or to the process
# alone when it has no group of its own.
signal() {
    kill -s "$1" -- "-$2" 2>/dev/null || kill -s "$1" "$2" 2>/dev/null || true
}

# launch NAME CMD...: run CMD in the background in its own session (own process group, so
# `stop` can also reach uv's child and the nanny's worker), stdout+stderr to DIR/NAME.log,
# PID to DIR/NAME.pid.
launch() {
    local name=$1
    shift
    local pidfile="$DIR/$name.pid" logfile="$DIR/$name.log"
    rm -f "$pidfile"
    local starter=()
    if command -v setsid >/dev/null 2>&1; then
        starter=(setsid)
    fi
    # The inner shell writes its own PID (the one that `exec` keeps) before becoming CMD.
    ${starter[@]+"${starter[@]}"} bash -c 'echo $$ > "$0"; exec "$@"' "$pidfile" "$@" \
        </dev/null >"$logfile" 2>&1 &
    local waited=0
    until [[ -s "$pidfile" ]]; do
        sleep 0.05
        waited=$((waited + 1))
        ((waited < 100)) || die "could not start $name (see $logfile)"
    done
}

pidfiles() {
    # Workers first so that they leave before the scheduler does.
    local f
    for f in "$DIR"/worker-*.pid "$DIR"/scheduler.pid; do
        [[ -e "$f" ]] && echo "$f"
    done
    return 0
}

read_address() {
    "${PYTHON[@]}" -c 'import json, sys; print(json.load(open(sys.argv[1]))["address"])' \
        "$DIR/scheduler.json"
}

# --- commands --------------------------------------------------------------------------

cmd_start() {
    [[ $# -ge 1 ]] || die "start needs the number of workers"
    local n=$1
    shift
    is_uint "$n" && ((n >= 1)) || die "number of workers must be a positive integer, got '$n'"
    local port=8786 dashboard_port=8787 memory_limit=auto timeout=60
    while [[ $# -gt 0 ]]; do
        case $1 in
            --port) port=${2:?--port needs a value}; shift 2 ;;
            --dashboard-port) dashboard_port=${2:?--dashboard-port needs a value}; shift 2 ;;
            --dir) DIR=${2:?--dir needs a value}; shift 2 ;;
            --memory-limit) memory_limit=${2:?--memory-limit needs a value}; shift 2 ;;
            --timeout) timeout=${2:?--timeout needs a value}; shift 2 ;;
            *) die "unknown option for start: $1" ;;
        esac
    done
    is_uint "$port" || die "--port must be a port number (0 = random), got '$port'"
    is_uint "$dashboard_port" || die "--dashboard-port must be a port number (0 = random)"
    is_uint "$timeout" || die "--timeout must be a whole number of seconds"

    mkdir -p "$DIR"
    DIR="$(cd "$DIR" && pwd)"
    local f
    while read -r f; do
        if alive "$(cat "$f")"; then
            die "a cluster is already running from $DIR ($(basename "$f" .pid) is up); run 'stop --dir $DIR' first"
        fi
        rm -f "$f"
    done < <(pidfiles)

    local scheduler_file="$DIR/scheduler.json"
    rm -f "$scheduler_file"
    local deadline=$((SECONDS + timeout))

    # The cluster's Dask settings (one partition at a time per worker, time-outs that bound
    # how long a lost host goes unnoticed): cluster/dask.env, for the scheduler and workers.
    set -a
    # shellcheck source=dask.env
    source "$ROOT/cluster/dask.env"
    set +a
    launch scheduler "${DASK[@]}" scheduler \
        --host 127.0.0.1 --port "$port" \
        --dashboard-address "127.0.0.1:$dashboard_port" \
        --scheduler-file "$scheduler_file"

    local i
    for ((i = 1; i <= n; i++)); do
        launch "worker-$i" "${DASK[@]}" worker \
            --scheduler-file "$scheduler_file" \
            --nthreads 1 --nworkers 1 \
            --host 127.0.0.1 --dashboard-address 127.0.0.1:0 \
            --name "local-worker-$i" \
            --memory-limit "$memory_limit" \
            --local-directory "$DIR/worker-$i" \
            --death-timeout 60
    done

    # The workers poll for the scheduler file themselves; wait for it here too.
    until [[ -s "$scheduler_file" ]]; do
        alive "$(cat "$DIR/scheduler.pid")" || fail_start "the scheduler exited"
        ((SECONDS < deadline)) || fail_start "no scheduler file after ${timeout}s"
        sleep 0.2
    done

    local remaining=$((deadline - SECONDS))
    ((remaining > 0)) || remaining=1
    local info
    if ! info="$("${PYTHON[@]}" -c '
import sys
from distributed import Client

scheduler_file, n, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
with Client(scheduler_file=scheduler_file, timeout=timeout) as client:
    client.wait_for_workers(n, timeout=timeout)
    print(client.scheduler.address)
    print(client.dashboard_link)
' "$scheduler_file" "$n" "$remaining" 2>"$DIR/wait.log")"; then
        fail_start "$n workers did not connect within ${timeout}s (see $DIR/wait.log)"
    fi
    local address dashboard
    address="$(sed -n 1p <<<"$info")"
    dashboard="$(sed -n 2p <<<"$info")"
    echo "scheduler address: $address"
    echo "dashboard:         $dashboard"
    echo "scheduler file:    $scheduler_file"
    echo "workers:           $n (1 thread each)"
    echo "use it:            export DASK_SCHEDULER_ADDRESS=$address"
}

fail_start() {
    echo "local-cluster: start failed: $*" >&2
    local log
    for log in "$DIR"/scheduler.log "$DIR"/worker-*.log; do
        [[ -e "$log" ]] || continue
        echo "--- last lines of $log" >&2
        tail -n 12 "$log" >&2
    done
    cmd_stop --timeout 10 >&2
    exit 1
}

cmd_stop() {
    local timeout=15
    while [[ $# -gt 0 ]]; do
        case $1 in
            --dir) DIR=${2:?--dir needs a value}; shift 2 ;;
            --timeout) timeout=${2:?--timeout needs a value}; shift 2 ;;
            *) die "unknown option for stop: $1" ;;
        esac
    done
    is_uint "$timeout" || die "--timeout must be a whole number of seconds"
    [[ -d "$DIR" ]] || { echo "nothing to stop in $DIR"; return 0; }

    local files=() f
    while read -r f; do
        files+=("$f")
    done < <(pidfiles)
    if ((${#files[@]} == 0)); then
        echo "nothing to stop in $DIR"
        return 0
    fi

    # Workers first, then the scheduler: a worker whose scheduler is already gone hangs in
    # its goodbye until the nanny kills it.
    local workers=() scheduler=()
    for f in "${files[@]}"; do
        if [[ $(basename "$f") == scheduler.pid ]]; then
            scheduler+=("$(cat "$f")")
        else
            workers+=("$(cat "$f")")
        fi
    done
    local deadline=$((SECONDS + timeout))
    ((${#workers[@]} == 0)) || terminate "$deadline" "${workers[@]}"
    ((${#scheduler[@]} == 0)) || terminate "$((SECONDS + timeout))" "${scheduler[@]}"
    rm -f "${files[@]}" "$DIR/scheduler.json"
    echo "stopped ${#files[@]} process(es) from $DIR"
}

# terminate DEADLINE PID...: SIGTERM each PID (only the group leader: uv passes it on to dask,
# and each nanny closes its own worker), wait until DEADLINE (in $SECONDS), then SIGKILL
# whatever is left of their process groups.
terminate() {
    local deadline=$1
    shift
    local pid left
    for pid in "$@"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    while :; do
        left=0
        for pid in "$@"; do
            alive "$pid" && left=$((left + 1))
        done
        ((left == 0 || SECONDS >= deadline)) && break
        sleep 0.2
    done
    ((left == 0)) && return 0
    echo "$left process(es) still up at the timeout: sending SIGKILL"
    for pid in "$@"; do
        alive "$pid" && signal KILL "$pid"
    done
    local tries=0
    for pid in "$@"; do
        while alive "$pid"; do
            ((++tries < 50)) || die "process group $pid survived SIGKILL"
            sleep 0.1
        done
    done
    return 0
}

cmd_status() {
    while [[ $# -gt 0 ]]; do
        case $1 in
            --dir) DIR=${2:?--dir needs a value}; shift 2 ;;
            *) die "unknown option for status: $1" ;;
        esac
    done
    local f name pid running=1
    local found=0
    while read -r f; do
        found=1
        name="$(basename "$f" .pid)"
        pid="$(cat "$f")"
        if alive "$pid"; then
            echo "$name: running (pid $pid)"
            [[ $name == scheduler ]] && running=0
        else
            echo "$name: not running (stale pid file, pid $pid)"
        fi
    done < <(pidfiles)
    ((found)) || echo "no cluster in $DIR"
    if ((running == 0)) && [[ -s "$DIR/scheduler.json" ]]; then
        echo "scheduler address: $(read_address)"
        echo "scheduler file:    $DIR/scheduler.json"
    fi
    return "$running"
}

cmd_address() {
    while [[ $# -gt 0 ]]; do
        case $1 in
            --dir) DIR=${2:?--dir needs a value}; shift 2 ;;
            *) die "unknown option for address: $1" ;;
        esac
    done
    [[ -s "$DIR/scheduler.json" ]] || die "no scheduler file in $DIR (is the cluster started?)"
    read_address
}

DIR=.dask-cluster
command=${1:-}
[[ $# -gt 0 ]] && shift
case $command in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    address) cmd_address "$@" ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
esac
