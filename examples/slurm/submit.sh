#!/bin/bash
# Submit a sharded `gateau score`: an array of N workers, then the finish step as a job that depends on it.
#   DATA=data.jsonl OUT=/shared/runs/a N=8 examples/slurm/submit.sh [gateau score options ...] [-- sbatch options]
# Options before `--` go to every `gateau score` (they must be the same for every task); after it, to sbatch
# (e.g. --partition=gpu --time=04:00:00). Prints the two job ids.
set -euo pipefail
: "${DATA:?set DATA}" "${OUT:?set OUT}" "${N:?set N, the number of array tasks}"
here=$(cd "$(dirname "$0")" && pwd)
gateau_args=() sbatch_args=()
while (($#)); do
    if [[ $1 == -- ]]; then shift; sbatch_args=("$@"); break; fi
    gateau_args+=("$1"); shift
done
export DATA OUT GATEAU_ARGS="${gateau_args[*]}"
array=$(sbatch --parsable --export=ALL --array="0-$((N - 1))" "${sbatch_args[@]}" "$here/score.sbatch")
finish=$(sbatch --parsable --export=ALL --dependency="afterany:${array}" --job-name=gateau-finish \
    --output="gateau-finish-%j.out" "${sbatch_args[@]}" "$here/score.sbatch")
echo "array job ${array} (${N} shards), finish job ${finish}"
