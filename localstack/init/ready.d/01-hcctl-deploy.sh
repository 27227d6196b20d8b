#!/usr/bin/env bash
# 01-hcctl-deploy.sh — LocalStack "ready" hook: once LocalStack answers, converge it to
# infra/hcctl.yaml with `hcctl deploy --no-wait` (security groups, MongoDB's EFS file system,
# log groups, secrets, roles, the ECS cluster, Cloud Map, task definitions and the MongoDB
# service, AWS Backup), so a fresh emulator starts with the whole AWS side. --no-wait: the hook
# must not hold LocalStack's start while the service's task comes up (`hcctl deploy` by hand
# follows it).
#
# LocalStack runs every script in /etc/localstack/init/ready.d when it is ready;
# docker-compose.yml mounts this directory there, and mounts what the deploy needs:
#
#   /opt/hcctl/infra/hcctl.yaml      ./infra             the config
#   /opt/hcctl/task-definitions/     ./task-definitions  the templates (../task-definitions from
#                                                        the config, hcctl's default)
#   /opt/hcctl/bin/hcctl             ${HCCTL_BIN_DIR:-./target/docker}, a Linux hcctl built with
#       docker build --target binary --output type=local,dest=target/docker .
#
# An `hcctl` on PATH is used first. Nothing to deploy with (no hcctl, no config, no templates) or
# no LOCALSTACK_AUTH_TOKEN (the community image serves no ECS and no AWS Backup): the hook says so
# and exits 0, so LocalStack starts as usual. A failed deploy exits with hcctl's code; LocalStack
# logs it and keeps running.
#
# Settings (environment of the LocalStack container):
#   HCCTL_BIN             hcctl to run            (default: `hcctl` on PATH, else /opt/hcctl/bin/hcctl)
#   HCCTL_CONFIG          the config              (default: /opt/hcctl/infra/hcctl.yaml)
#   HCCTL_AWS_ACCOUNT_ID  for configs naming ${HCCTL_AWS_ACCOUNT_ID} (default: 000000000000, LocalStack's)
#   HCCTL_DEPLOY_ENDPOINT where to deploy         (default: http://localhost:4566)
set -euo pipefail

log() { printf 'hcctl-deploy: %s\n' "$*"; }
skip() {
  log "skipped: $*"
  exit 0
}

config=${HCCTL_CONFIG:-/opt/hcctl/infra/hcctl.yaml}
endpoint=${HCCTL_DEPLOY_ENDPOINT:-http://localhost:4566}

if [ -n "${HCCTL_BIN:-}" ]; then
  hcctl=$HCCTL_BIN
elif command -v hcctl >/dev/null 2>&1; then
  hcctl=$(command -v hcctl)
else
  hcctl=/opt/hcctl/bin/hcctl
fi

if [ ! -f "$hcctl" ] || [ ! -x "$hcctl" ]; then
  skip "no hcctl binary (looked on PATH and at $hcctl). To deploy when LocalStack starts, build one" \
    "with 'docker build --target binary --output type=local,dest=target/docker .' (docker-compose.yml" \
    "mounts \${HCCTL_BIN_DIR:-./target/docker} at /opt/hcctl/bin) and restart LocalStack."
fi
if ! version=$("$hcctl" --version 2>&1); then
  skip "$hcctl does not run in this container (${version:-no output}): it must be a Linux build for this" \
    "architecture and glibc 2.36 or older (Debian bookworm); 'docker build --target binary' makes one."
fi
if [ ! -f "$config" ]; then
  skip "no config at $config (docker-compose.yml mounts ./infra at /opt/hcctl/infra)."
fi
templates=$(dirname "$config")/../task-definitions
if ! grep -Eq '^[[:space:]]+templates:' "$config" && [ ! -d "$templates" ]; then
  skip "no task definition templates at $templates (docker-compose.yml mounts ./task-definitions" \
    "at /opt/hcctl/task-definitions)."
fi
if [ -z "${LOCALSTACK_AUTH_TOKEN:-}" ]; then
  skip "LOCALSTACK_AUTH_TOKEN is not set: without LocalStack's paid tier there is no ECS and no AWS" \
    "Backup to deploy to. Set LOCALSTACK_IMAGE=localstack/localstack-pro:4.7 and" \
    "LOCALSTACK_AUTH_TOKEN in .env, then recreate the container (docker compose up -d localstack)."
fi

# LocalStack accepts any credentials; setting them keeps the SDK from looking any further (and
# from asking an instance metadata service). Its account is 000000000000.
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
export AWS_REGION=${AWS_REGION:-${AWS_DEFAULT_REGION:-eu-west-3}}   # the config's region wins
export AWS_EC2_METADATA_DISABLED=true
export HCCTL_AWS_ACCOUNT_ID=${HCCTL_AWS_ACCOUNT_ID:-000000000000}

log "$version: deploying $config to $endpoint (account $HCCTL_AWS_ACCOUNT_ID)"
rc=0
"$hcctl" deploy --no-wait --config "$config" --endpoint-url "$endpoint" || rc=$?
if [ "$rc" -ne 0 ]; then
  log "failed: hcctl deploy exited with $rc (see above). Is this the localstack-pro image with a" \
    "valid LOCALSTACK_AUTH_TOKEN? Re-run by hand with:" \
    "docker compose exec localstack /etc/localstack/init/ready.d/01-hcctl-deploy.sh"
  exit "$rc"
fi
log "done: LocalStack is converged to $config"
