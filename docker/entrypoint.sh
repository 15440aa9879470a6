#!/usr/bin/env bash
# runner-metrics entrypoint for a self-hosted GitHub Actions runner container: the drop-in for the
# netcat scripts. Usage: entrypoint.sh [arguments for run.sh]. It
# - starts the exporter (`runner-metrics serve`, with the runner's own Node) in the background and
#   restarts it if it dies, at most METRICS_RESTART_LIMIT times per METRICS_RESTART_WINDOW_SECONDS;
# - runs the runner with its stdout copied by `tee` to the container log and to RUNNER_OUTPUT_LOG,
#   where the exporter reads the true job results. The runner writes into tee, never into the
#   exporter, so a slow, stopped or crashed exporter cannot block, lose or kill anything;
# - passes SIGTERM and SIGINT on to the runner (as SIGTERM: a background job ignores SIGINT);
# - when the runner exits, serves metrics METRICS_LINGER_SECONDS longer so an ephemeral runner's
#   last job is scraped (a second signal ends that at once), stops everything it started and
#   exits with the runner's status.
# No `set -e`: nothing that goes wrong with the metrics may stop the runner.
set -uo pipefail

log() { printf 'runner-metrics entrypoint: %s\n' "$*" >&2; }

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)

# A number from the environment, or the default with a warning: a typo in a metrics setting must
# not keep the runner from starting.
number_setting() {
  local name=$1 default=$2 value=${!1:-}
  if [[ -z $value ]]; then
    printf '%s' "$default"
  elif [[ $value =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
    printf '%s' "$value"
  else
    log "$name must be a non-negative number (got \"$value\"); using $default"
    printf '%s' "$default"
  fi
}

runner_dir=${RUNNER_DIR:-$PWD}
runner_command=${RUNNER_COMMAND:-./run.sh}
metrics_cli=${RUNNER_METRICS_CLI:-$here/cli.js}
linger=$(number_setting METRICS_LINGER_SECONDS 15)
restart_limit=$(number_setting METRICS_RESTART_LIMIT 5)
restart_limit=${restart_limit%%.*}
restart_window=$(number_setting METRICS_RESTART_WINDOW_SECONDS 300)
restart_window=${restart_window%%.*}
restart_delay=$(number_setting METRICS_RESTART_DELAY_SECONDS 2)
stop_grace=$(number_setting METRICS_STOP_GRACE_SECONDS 5)

export JOBS_LOG=${JOBS_LOG:-/tmp/jobs.log}
# Read by the exporter (the results) and by job-completed.sh (which then leaves finishing to it).
export RUNNER_OUTPUT_LOG=${RUNNER_OUTPUT_LOG:-/tmp/runner-output.log}
# Our hooks, unless the image names its own (theirs can call ours). Never a path that is missing:
# the runner fails every job whose hook cannot run.
if [[ -z ${ACTIONS_RUNNER_HOOK_JOB_STARTED:-} && -f $here/hooks/job-started.sh ]]; then
  export ACTIONS_RUNNER_HOOK_JOB_STARTED=$here/hooks/job-started.sh
fi
if [[ -z ${ACTIONS_RUNNER_HOOK_JOB_COMPLETED:-} && -f $here/hooks/job-completed.sh ]]; then
  export ACTIONS_RUNNER_HOOK_JOB_COMPLETED=$here/hooks/job-completed.sh
fi

# The runner's bundled Node (the newest externals/nodeNN, 20 or later), else the one on PATH.
node=${RUNNER_NODE:-}
if [[ -z $node ]]; then
  best=0
  for candidate in "$runner_dir"/externals/node*/bin/node; do
    version=${candidate#"$runner_dir"/externals/node}
    version=${version%%/*}
    if [[ $version =~ ^[0-9]+$ ]] && ((version >= 20 && version > best)) && [[ -x $candidate ]]; then
      best=$version
      node=$candidate
    fi
  done
  node=${node:-node}
fi

# Waits until child $1 has exited and returns its status. With a grace period $2 (seconds), kills
# it if it is still there by then. Signals interrupt `wait`, hence the loop.
reap() {
  local pid=$1 grace=${2:-} timer=
  if [[ -n $grace ]]; then
    sleep "$grace" &
    timer=$!
  fi
  while kill -0 "$pid" 2>/dev/null; do
    if [[ -z $timer ]]; then
      wait "$pid"
    elif kill -0 "$timer" 2>/dev/null; then
      wait -n "$pid" "$timer"
    else
      kill -KILL "$pid" 2>/dev/null
      break
    fi
  done
  if [[ -n $timer ]]; then
    kill "$timer" 2>/dev/null
    wait "$timer" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
}

# Runs in a background subshell: keeps the exporter up, within the restart budget.
supervise_exporter() {
  local child='' stopping=0 status now recent started_at
  local -a restarts=()
  # Bounded: SIGTERM, then SIGKILL after the grace period. Runs while the loop waits on $child.
  trap 'stopping=1; if [[ -n $child ]]; then kill -TERM "$child" 2>/dev/null; reap "$child" "$stop_grace"; fi' TERM
  while :; do
    # Its stdout joins stderr: the container's stdout carries the runner's output and nothing else.
    "$node" "$metrics_cli" serve >&2 &
    child=$!
    if ((stopping)); then kill -TERM "$child" 2>/dev/null; fi
    reap "$child"
    status=$?
    ((stopping)) && return 0
    child=''
    if ((status == 2)); then
      log "the exporter refused its options (exit status 2); not restarting it. The runner goes on without metrics."
      return 1
    fi
    now=$SECONDS
    recent=()
    for started_at in "${restarts[@]}"; do
      ((now - started_at < restart_window)) && recent+=("$started_at")
    done
    restarts=("${recent[@]}")
    if ((${#restarts[@]} >= restart_limit)); then
      log "the exporter died ${#restarts[@]} times within ${restart_window} s; not restarting it again. The runner goes on without metrics."
      return 1
    fi
    restarts+=("$now")
    log "the exporter exited (status $status); restarting it in ${restart_delay} s. The runner is not affected."
    sleep "$restart_delay" &
    child=$!
    reap "$child"
    child=''
    ((stopping)) && return 0
  done
}

if ! cd -- "$runner_dir"; then
  log "cannot enter the runner directory $runner_dir (RUNNER_DIR)"
  exit 1
fi

# Started before the runner's output pipe exists, so the exporter never holds its write end.
supervise_exporter &
supervisor_pid=$!

runner_pid=''
linger_pid=''
stop_requested=0
# shellcheck disable=SC2317 # called by the trap below, which shellcheck does not follow
on_signal() {
  stop_requested=1
  if [[ -n $linger_pid ]]; then
    kill -TERM "$linger_pid" 2>/dev/null
  elif [[ -n $runner_pid ]]; then
    log "passing the stop signal on to the runner (SIGTERM)"
    kill -TERM "$runner_pid" 2>/dev/null
  fi
}
trap on_signal TERM INT

# -i: a Ctrl-C meant for the runner must not take its output copy down first. -p (GNU): a broken
# container-log pipe must not end tee either, or the runner's next line would get SIGPIPE.
tee_options=(-a -i)
if tee -p </dev/null >/dev/null 2>&1; then tee_options+=(-p); fi
exec {runner_out}> >(exec tee "${tee_options[@]}" -- "$RUNNER_OUTPUT_LOG")
tee_pid=$!
"$runner_command" "$@" >&"$runner_out" {runner_out}>&- &
runner_pid=$!
# Only the runner holds the pipe now: tee ends when the runner and its children are done with it.
exec {runner_out}>&-
((stop_requested)) && kill -TERM "$runner_pid" 2>/dev/null

reap "$runner_pid"
runner_status=$?

if kill -0 "$supervisor_pid" 2>/dev/null && [[ $linger != 0 ]]; then
  log "the runner exited with status $runner_status; serving metrics for $linger s more"
  sleep "$linger" &
  linger_pid=$!
  reap "$linger_pid"
else
  log "the runner exited with status $runner_status"
fi

# tee ends at the end of its input, once it has copied the runner's last bytes; a runner child
# that kept the pipe open must not keep us waiting.
reap "$tee_pid" "$stop_grace"
kill -TERM "$supervisor_pid" 2>/dev/null
reap "$supervisor_pid" "$((${stop_grace%%.*} + 2))"
log "stopped"
exit "$runner_status"
