#!/usr/bin/env bash
# ACTIONS_RUNNER_HOOK_JOB_STARTED for runner-metrics: appends `epoch|started|0|job_id` to the job
# log, in one write (O_APPEND: safe next to other writers). The runner runs this with `bash -e`
# before each job and fails the job if it exits non-zero, so nothing here may fail: a log that
# cannot be written is reported in the job's output and the hook still exits 0. No subprocesses:
# it must finish in well under 50 ms.
set +e

jobs_log=${JOBS_LOG:-/tmp/jobs.log}

# The job's identity; GITHUB_JOB is the YAML key, shared by the legs of a matrix.
job_id="${GITHUB_REPOSITORY:-}/${GITHUB_RUN_ID:-}/${GITHUB_RUN_ATTEMPT:-}/${GITHUB_JOB:-}"
job_id=${job_id//[$'|\r\n']/_}
job_id=${job_id:0:512}

# EPOCHREALTIME (bash 5) is a builtin clock; its decimal point follows the locale.
now=${EPOCHREALTIME/,/.}
if [[ -z $now ]]; then
  printf -v now '%(%s)T' -1
fi

if ! { printf '%s|started|0|%s\n' "$now" "$job_id" >>"$jobs_log"; } 2>/dev/null; then
  printf 'runner-metrics: cannot append to the job log %s; this job start is not recorded (the job goes on)\n' "$jobs_log"
fi
exit 0
