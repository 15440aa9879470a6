#!/usr/bin/env bash
# ACTIONS_RUNNER_HOOK_JOB_COMPLETED for runner-metrics. A hook cannot see the job's result, so:
# - under the runner-metrics entrypoint (RUNNER_OUTPUT_LOG set), the exporter records the finish
#   from the runner's own `Job ... completed with result: ...` line, and this hook writes nothing
#   (a second finish line would count the job twice);
# - otherwise it appends `epoch|unknown|duration|job_id` in one write: the job finished, its result
#   is not known, and it is never counted as a success.
# Like job-started.sh: always exits 0 and writes one line in one write; its one subprocess is
# the `tail` that finds the job's start.
set +e

[[ -n ${RUNNER_OUTPUT_LOG:-} ]] && exit 0

jobs_log=${JOBS_LOG:-/tmp/jobs.log}
job_id="${GITHUB_REPOSITORY:-}/${GITHUB_RUN_ID:-}/${GITHUB_RUN_ATTEMPT:-}/${GITHUB_JOB:-}"
job_id=${job_id//[$'|\r\n']/_}
job_id=${job_id:0:512}

now=${EPOCHREALTIME/,/.}
if [[ -z $now ]]; then
  printf -v now '%(%s)T' -1
fi

# Seconds with up to 6 decimals -> whole microseconds in REPLY (bash has no floating point).
to_micros() {
  local whole=${1%%.*} fraction=
  [[ $1 == *.* ]] && fraction=${1#*.}
  fraction=${fraction}000000
  REPLY=$((10#$whole * 1000000 + 10#${fraction:0:6}))
}

# The duration runs from this job's started line: the last one with this id near the log's end.
duration=0
started=
if [[ -r $jobs_log ]]; then
  while IFS='|' read -r epoch status _ id _; do
    [[ ${status,,} == started && $id == "$job_id" ]] && started=$epoch
  done < <(tail -c 16384 -- "$jobs_log" 2>/dev/null)
fi
seconds='^[0-9]{1,12}(\.[0-9]+)?$'
if [[ $started =~ $seconds && $now =~ $seconds ]]; then
  to_micros "$now"
  micros=$REPLY
  to_micros "$started"
  micros=$((micros - REPLY))
  if ((micros > 0)); then
    printf -v duration '%d.%06d' "$((micros / 1000000))" "$((micros % 1000000))"
  fi
fi

if ! { printf '%s|unknown|%s|%s\n' "$now" "$duration" "$job_id" >>"$jobs_log"; } 2>/dev/null; then
  printf 'runner-metrics: cannot append to the job log %s; this job end is not recorded (the job goes on)\n' "$jobs_log"
fi
exit 0
