# syntax=docker/dockerfile:1
#
# hcctl's container image: the release binary on Debian bookworm-slim, run as an unprivileged
# user, and nothing else (no toolchain, no sources, no shell tools beyond the base image's).
#
#   docker build -t hcctl:0.1.0 --build-arg REVISION="$(git rev-parse --short=12 HEAD)" .
#                                                          the runtime image (the last stage)
#   docker run --rm -e HCCTL_MONGODB_URI hcctl:0.1.0 migrate /data/healthcare_dataset.csv
#   docker build --target binary --output type=local,dest=target/docker .
#                                                          just the binary, in target/docker/hcctl
#                                                          (for the LocalStack hook, see
#                                                          docker-compose.yml)
#   docker build --target builder .                        toolchain + dependencies + sources
#                                                          (the compose `tests` service)
#
# The ECS task definitions (task-definitions/*.json) and infra/hcctl.yaml are not in the image:
# `hcctl deploy` reads them on the machine that deploys, and the app task only migrates.
#
# Stages:
#   builder  Rust toolchain; dependencies compiled in their own layer (rebuilt only when
#            Cargo.toml or Cargo.lock change), then hcctl itself
#   binary   the bare executable, for `--output`
#   runtime  debian:bookworm-slim + CA certificates + /usr/local/bin/hcctl (the default target)

# The toolchain: Cargo.lock needs rustc >= 1.94.1 (the AWS SDK crates declare it, and so does
# Cargo.toml's rust-version); 1.95.0 is the toolchain the project is built and tested with. bookworm, like the runtime stage, so the binary's glibc matches.
FROM rust:1.95.0-slim-bookworm AS builder

WORKDIR /src

# 1. Dependencies only. A stub crate with the real manifest and lock file compiles every
#    dependency into target/ (and fetches the dev-dependencies too, for `cargo test` in the
#    `tests` service); this layer is reused as long as Cargo.toml and Cargo.lock do not change.
#    The stub's own artifacts are deleted so that the real build below cannot mistake them for
#    up to date (COPY keeps the sources' modification times, which may be older).
COPY Cargo.toml Cargo.lock build.rs ./
RUN mkdir src \
    && echo 'fn main() { panic!("dependency stub, not hcctl") }' > src/main.rs \
    && touch src/lib.rs \
    && cargo fetch --locked \
    && cargo build --release --locked \
    && rm -rf src target/release/hcctl target/release/hcctl.d target/release/libhcctl.* \
        target/release/deps/hcctl-* target/release/deps/libhcctl-* \
        target/release/.fingerprint/hcctl-*

# 2. hcctl itself. `--version` proves the binary is the real one (the stub would panic).
#    The build context has no .git: `--build-arg REVISION=$(git rev-parse --short=12 HEAD)` puts
#    the commit into `hcctl --version` (build.rs reads HCCTL_GIT_COMMIT).
ARG REVISION=unknown
ENV HCCTL_GIT_COMMIT=${REVISION}
COPY src ./src
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    && ./target/release/hcctl --version

# Only the executable, for `docker build --target binary --output type=local,dest=DIR .`
FROM scratch AS binary
COPY --from=builder /src/target/release/hcctl /hcctl

# The image that runs: the last stage, so a plain `docker build .` produces it.
FROM debian:bookworm-slim AS runtime

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="hcctl" \
      org.opencontainers.image.description="Migrate hospital admission CSVs into MongoDB, provision their AWS infrastructure, and watch their backups." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"

# CA certificates only: hcctl is built with rustls (no OpenSSL at run time) but verifies TLS
# peers (AWS endpoints, MongoDB with tls=true) against the system's trust store.
# The unprivileged user has uid/gid 10001, the "user" of task-definitions/app.json. Its working
# directory /work is the only place it can write (the default quarantine file of
# `hcctl migrate` goes to the working directory); the compose file mounts a volume there.
# DL3008 (pin apt package versions) is ignored on purpose: the base image tag fixes the Debian
# release, ca-certificates must follow that release's security updates, and an exact Debian
# revision pin breaks the build as soon as the archive moves on to the next revision.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 hcctl \
    && useradd --system --uid 10001 --gid 10001 --home-dir /work --no-create-home \
        --shell /usr/sbin/nologin hcctl \
    && install -d -o 10001 -g 10001 -m 0750 /work

COPY --from=builder /src/target/release/hcctl /usr/local/bin/hcctl

# /work as a volume: ECS on Fargate creates a task's bind-mount volume (task-definitions/app.json
# mounts `work` at /work) root-owned 0755 unless the image declares a VOLUME at that path, in
# which case the volume starts as a copy of the image's directory, owned by 10001 (ECS developer
# guide, "Use bind mounts"). Without it the read-only-root app task could not write its
# quarantine or its sort runs. Declared after the directory exists, so its ownership is copied.
VOLUME ["/work"]

USER 10001:10001
WORKDIR /work

# No HEALTHCHECK: hcctl is not a service but a batch job (migrate, verify, deploy, …). It runs,
# exits, and its exit code is the result (0 success, 1 failure, 2 usage or input error); there is
# no long-running process whose health could be probed. Compose, ECS and CI read the exit code.
# Exec form: hcctl is PID 1 and handles SIGTERM itself (ECS stopping the task; `docker stop`):
# it exits 143 at once with one line instead of being ignored until the SIGKILL 30 s later.
ENTRYPOINT ["hcctl"]
CMD ["--help"]
