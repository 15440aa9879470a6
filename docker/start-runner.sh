#!/usr/bin/env bash
# The runner command of the example image (the entrypoint's RUNNER_COMMAND), run in the runner
# directory: registers the runner on its first start, then becomes run.sh (exec, so the
# entrypoint's SIGTERM reaches it directly). Registration needs RUNNER_URL (the repository or
# organization URL) and RUNNER_TOKEN (a registration token); optional: RUNNER_NAME, RUNNER_LABELS
# (default: RUNNER_TYPE), RUNNER_GROUP, RUNNER_WORKDIR (_work), RUNNER_EPHEMERAL=true.
set -euo pipefail

if [[ ! -f .runner ]]; then
  if [[ -z ${RUNNER_URL:-} || -z ${RUNNER_TOKEN:-} ]]; then
    echo "start-runner: this runner is not registered yet; set RUNNER_URL and RUNNER_TOKEN (a registration token)" >&2
    exit 1
  fi
  args=(--unattended --replace --url "$RUNNER_URL" --token "$RUNNER_TOKEN"
    --name "${RUNNER_NAME:-$(hostname)}" --labels "${RUNNER_LABELS:-${RUNNER_TYPE:-standard}}" --work "${RUNNER_WORKDIR:-_work}")
  if [[ -n ${RUNNER_GROUP:-} ]]; then args+=(--runnergroup "$RUNNER_GROUP"); fi
  if [[ ${RUNNER_EPHEMERAL:-false} == true ]]; then args+=(--ephemeral); fi
  ./config.sh "${args[@]}"
fi

# Jobs inherit the runner's environment: the registration token is none of their business.
unset RUNNER_TOKEN
exec ./run.sh "$@"
