#!/usr/bin/env bash
# Waits until a Job has completed or failed, at most TIMEOUT seconds, then prints its last log lines.
# Exit 0 when it completed, 1 when it failed, 2 when it did neither in time. `kubectl wait` alone
# waits for one condition only: waiting for "complete" on a failed Job would hang until its timeout.
#
#   job=$(kubectl -n backup create -f k8s/examples/ci-backup-job.yaml -o name)
#   bash k8s/examples/wait-for-job.sh backup "$job" 7200
set -euo pipefail
namespace=$1 job=$2 timeout=${3:-7200} interval=${WAIT_INTERVAL:-10}
deadline=$((SECONDS + timeout))
while :; do
  # Complete or Failed with status True; Kubernetes >= 1.31 sets SuccessCriteriaMet/FailureTarget first.
  state=$(kubectl -n "$namespace" get "$job" -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}')
  case " $state " in
    *" Complete "*) result=0 ;;
    *" Failed "*) result=1 ;;
    *) result="" ;;
  esac
  if [ -n "$result" ]; then
    kubectl -n "$namespace" logs "$job" --tail=50 || true
    [ "$result" = 0 ] && echo "$job completed" || echo "$job failed" >&2
    exit "$result"
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "$job neither completed nor failed within ${timeout} s" >&2
    exit 2
  fi
  sleep "$interval"
done
