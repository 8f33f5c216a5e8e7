#!/usr/bin/env bash
# The preprocessing job on a Dask cluster that lives inside one SLURM allocation (no
# dask-jobqueue needed): the scheduler and the job run on the first node, one
# single-threaded `dask worker` per task on all nodes. Submit from the repository, which
# must be on a filesystem shared by all nodes, like the game logs:
#
#   sbatch cluster/slurm-batch.sh /shared/splendor/games /shared/splendor/processed
#
# Every connection of the cluster is TLS with mutual authentication, with certificates made
# for the job (cluster/make-certs.sh; openssl needed on the first node).
# Adjust the #SBATCH lines (and add -p/-A) to your site. The dashboard listens on
# 127.0.0.1:8787 of the first node only; reach it with an SSH tunnel through the login node:
#   ssh -L 8787:127.0.0.1:8787 -J login-node <first node of the job>
#
#SBATCH --job-name=splendor-preprocess
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4
#SBATCH --cpus-per-task=1
#SBATCH --mem-per-cpu=4G
#SBATCH --time=01:00:00
#SBATCH --output=slurm-%x-%j.out
set -euo pipefail

DATA_ROOT=${1:?usage: sbatch cluster/slurm-batch.sh DATA_ROOT OUTPUT_DIR}
OUTPUT_DIR=${2:?usage: sbatch cluster/slurm-batch.sh DATA_ROOT OUTPUT_DIR}
PROJECT=${SPLENDOR_PROJECT:-${SLURM_SUBMIT_DIR:-$PWD}}
N_WORKERS=${SLURM_NTASKS:?run this through sbatch}

# One environment, synced once here (not by every task at once), then used by path so that
# the scheduler, every worker and the job run exactly the versions of uv.lock.
if command -v uv >/dev/null 2>&1; then
    uv sync --project "$PROJECT" --locked --no-dev
fi
VENV=${SPLENDOR_VENV:-$PROJECT/.venv}
export PATH="$VENV/bin:$PATH"
export OMP_NUM_THREADS=1

# Connection file on the shared filesystem, so that workers on other nodes can read it.
RUN_DIR=$PROJECT/.dask-slurm/$SLURM_JOB_ID
mkdir -p "$RUN_DIR"
SCHEDULER_FILE=$RUN_DIR/scheduler.json

# Optional: DASK_INTERFACE=ib0 to put the cluster traffic on InfiniBand.
net_args=()
if [[ -n "${DASK_INTERFACE:-}" ]]; then
    net_args=(--interface "$DASK_INTERFACE")
fi

# The cluster's Dask settings (one partition at a time per worker, time-outs that bound how
# long a lost node goes unnoticed) for the scheduler, the workers (srun passes the
# environment on) and the job: cluster/dask.env.
set -a
# shellcheck source=dask.env
source "$PROJECT/cluster/dask.env"
set +a

# TLS with mutual authentication (cluster/README.md, "TLS"): the cluster listens on the
# nodes' network, so only processes holding a certificate of this job's own CA may join
# or submit work. The CA is made for this job alone, in its run folder (mode 700), and its
# key deleted once the certificates are signed; the settings are those of
# cluster/tls.env, with the certificates here instead of /etc/dask-tls.
TLS_DIR=$RUN_DIR/tls
"$PROJECT/cluster/make-certs.sh" "$TLS_DIR" 7 >/dev/null
rm -f "$TLS_DIR/ca.key"
while IFS='=' read -r name value; do
    export "$name=${value/#\/etc\/dask-tls/$TLS_DIR}"
done < <(grep -E '^DASK_[A-Z_]+=' "$PROJECT/cluster/tls.env")

dask scheduler --scheduler-file "$SCHEDULER_FILE" --protocol tls ${net_args[@]+"${net_args[@]}"} \
    --dashboard-address 127.0.0.1:8787 >"$RUN_DIR/scheduler.log" 2>&1 &
scheduler_pid=$!

srun --ntasks="$N_WORKERS" --cpus-per-task=1 --kill-on-bad-exit=0 \
    dask worker --scheduler-file "$SCHEDULER_FILE" ${net_args[@]+"${net_args[@]}"} \
    --nthreads 1 --nworkers 1 \
    --memory-limit "${SLURM_MEM_PER_CPU:-4096}MiB" \
    --local-directory "${TMPDIR:-/tmp}" \
    --death-timeout 120 >"$RUN_DIR/workers.log" 2>&1 &
workers_pid=$!

cleanup() {
    # srun passes SIGTERM on to every task; the scheduler closes on SIGTERM.
    kill -TERM "$workers_pid" 2>/dev/null || true
    wait "$workers_pid" 2>/dev/null || true
    kill -TERM "$scheduler_pid" 2>/dev/null || true
    wait "$scheduler_pid" 2>/dev/null || true
}
trap cleanup EXIT

# Wait (bounded) for the scheduler file, then for all the workers.
for _ in $(seq 300); do
    [[ -s "$SCHEDULER_FILE" ]] && break
    kill -0 "$scheduler_pid" 2>/dev/null || { cat "$RUN_DIR/scheduler.log" >&2; exit 1; }
    sleep 1
done
address=$(python - "$SCHEDULER_FILE" "$N_WORKERS" <<'EOF'
import sys
from distributed import Client

with Client(scheduler_file=sys.argv[1], timeout=60) as client:
    client.wait_for_workers(int(sys.argv[2]), timeout=600)
    print(client.scheduler.address)
EOF
)
echo "scheduler $address, $N_WORKERS workers, logs in $RUN_DIR"

splendor-il preprocess --scheduler-address "$address" --num-workers "$N_WORKERS" \
    --data-root "$DATA_ROOT" --output "$OUTPUT_DIR" --no-progress
