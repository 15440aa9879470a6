# syntax=docker/dockerfile:1
# runner-metrics images:
#   docker build -t github-runner .                          the example runner image (default target)
#   docker build --target exporter -t runner-metrics .       the exporter alone, for a sidecar
# The build stage runs the npm scripts CI runs and bundles the exporter into two self-contained
# files (cli.js, worker.js) that need no node_modules: the runner image runs them with the
# runner's own bundled Node, so it needs no other runtime.

ARG NODE_VERSION=20

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json ./
COPY src ./src
COPY scripts ./scripts
RUN npm run build
RUN npm run bundle

# The exporter alone. As a sidecar it shares the runner container's /tmp (job log, runner output).
# It also carries the drop-in for other runner images:
#   COPY --from=runner-metrics /opt/runner-metrics/ /opt/runner-metrics/
FROM node:${NODE_VERSION}-alpine AS exporter
COPY --from=build /src/dist/bundle/ /opt/runner-metrics/
COPY hooks/job-started.sh hooks/job-completed.sh /opt/runner-metrics/hooks/
COPY docker/entrypoint.sh /opt/runner-metrics/
USER node
EXPOSE 9091
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.METRICS_PORT || 9091) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/opt/runner-metrics/cli.js"]
CMD ["serve"]

# An example self-hosted runner image with the exporter, the job hooks and the entrypoint.
# RUNNER_TYPE names its flavour (standard, chrome, chrome-go); INSTALL_CHROME=true adds Google
# Chrome (amd64 only), GO_VERSION=1.x.y adds Go.
FROM ubuntu:questing AS runner
ARG TARGETARCH
ARG RUNNER_VERSION=2.329.0
# Optional: the SHA-256 of the runner tarball, as published with the release; checked when set.
ARG RUNNER_SHA256=
ARG RUNNER_TYPE=standard
ARG INSTALL_CHROME=false
ARG GO_VERSION=
ENV DEBIAN_FRONTEND=noninteractive

# The runner's .NET needs ICU (the package name carries its version, so take the newest there is).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl git jq tini \
 && apt-get install -y --no-install-recommends "$(apt-cache search --names-only '^libicu[0-9]+$' | cut -d' ' -f1 | sort -V | tail -n 1)" \
 && rm -rf /var/lib/apt/lists/*

RUN if [ "$INSTALL_CHROME" = true ]; then \
      [ "${TARGETARCH:-amd64}" = amd64 ] || { echo "Google Chrome is built for amd64 only" >&2; exit 1; }; \
      curl -fsSL -o /tmp/chrome.deb https://dl.google.com/linux/direct/google-chrome-stable_current_amd64.deb \
      && apt-get update && apt-get install -y --no-install-recommends /tmp/chrome.deb \
      && rm -rf /tmp/chrome.deb /var/lib/apt/lists/*; \
    fi \
 && if [ -n "$GO_VERSION" ]; then \
      curl -fsSL "https://go.dev/dl/go${GO_VERSION}.linux-${TARGETARCH:-amd64}.tar.gz" | tar -xz -C /usr/local; \
    fi
ENV PATH=/usr/local/go/bin:${PATH}

# uid 1001: ubuntu images already have a user 1000. The runner refuses to run as root.
RUN useradd --create-home --uid 1001 --shell /bin/bash runner
WORKDIR /home/runner/actions-runner
RUN case "${TARGETARCH:-amd64}" in amd64) arch=x64 ;; arm64) arch=arm64 ;; *) echo "no runner for ${TARGETARCH}" >&2; exit 1 ;; esac \
 && curl -fsSL -o /tmp/runner.tar.gz "https://github.com/actions/runner/releases/download/v${RUNNER_VERSION}/actions-runner-linux-${arch}-${RUNNER_VERSION}.tar.gz" \
 && if [ -n "$RUNNER_SHA256" ]; then echo "${RUNNER_SHA256}  /tmp/runner.tar.gz" | sha256sum -c -; fi \
 && tar -xzf /tmp/runner.tar.gz \
 && rm /tmp/runner.tar.gz \
 && chown -R runner:runner /home/runner

COPY --from=build /src/dist/bundle/ /opt/runner-metrics/
COPY hooks/job-started.sh hooks/job-completed.sh /opt/runner-metrics/hooks/
COPY docker/entrypoint.sh docker/start-runner.sh /opt/runner-metrics/

ENV RUNNER_TYPE=${RUNNER_TYPE} \
    RUNNER_DIR=/home/runner/actions-runner \
    RUNNER_COMMAND=/opt/runner-metrics/start-runner.sh \
    RUNNER_METRICS_CLI=/opt/runner-metrics/cli.js \
    ACTIONS_RUNNER_HOOK_JOB_STARTED=/opt/runner-metrics/hooks/job-started.sh \
    ACTIONS_RUNNER_HOOK_JOB_COMPLETED=/opt/runner-metrics/hooks/job-completed.sh \
    JOBS_LOG=/tmp/jobs.log \
    METRICS_FILE=/tmp/metrics.prom \
    RUNNER_OUTPUT_LOG=/tmp/runner-output.log

USER runner
EXPOSE 9091
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD curl -fsS "http://127.0.0.1:${METRICS_PORT:-9091}/healthz" || exit 1
# tini as PID 1: it reaps the orphans jobs leave behind and passes signals to the entrypoint.
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/runner-metrics/entrypoint.sh"]
