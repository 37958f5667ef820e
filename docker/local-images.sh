#!/usr/bin/env bash
# Build local stand-ins for the public base images, from Debian packages, on a machine that
# can reach Debian's mirror but no container registry:
#
#   mhinr-local/python:3.11   Debian bookworm's Python 3.11 in a venv at /opt/venv (on PATH,
#                             so `python` and `pip` behave as in python:3.11-slim), the host's
#                             CA bundle (pip inside a build goes through the host's network),
#                             and the host's PyTorch CPU wheel in /wheels when one is found
#   mhinr-local/redis:7       the same root file system running Debian's redis-server (7.0)
#
# Then, in the same shell:   export MHINR_PYTHON_IMAGE=mhinr-local/python:3.11 \
#   MHINR_REDIS_IMAGE=mhinr-local/redis:7 \
#   MHINR_TORCH_PIP_ARGS="--no-index --find-links /wheels" MHINR_BUILD_NETWORK=host
# and `docker-compose up --build` builds on them (tests/test_compose.py does).
# Needs root, debootstrap and a running Docker daemon (DOCKER_HOST is honoured). The
# debootstrapped tree is kept as a tarball in $MHINR_DOCKER_CACHE (default ~/.cache/mhinr-docker)
# and reused while the package list below is unchanged.
set -euo pipefail

SUITE=bookworm
MIRROR=${MHINR_DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=python3,python3-venv,ca-certificates,redis-server,redis-tools
CACHE=${MHINR_DOCKER_CACHE:-$HOME/.cache/mhinr-docker}
WHEELS=${MHINR_TORCH_WHEELS:-/opt/wheels}
DOCKER=${DOCKER:-docker}

key=$(printf '%s %s %s' "$SUITE" "$PACKAGES" "$MIRROR" | sha256sum | cut -c1-12)
tarball="$CACHE/$SUITE-$key.tar"
mkdir -p "$CACHE"

if [[ ! -s "$tarball" ]]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo "debootstrap $SUITE ($PACKAGES) ..."
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/root" "$MIRROR" \
    >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log"; exit 1; }
  chroot "$work/root" python3 -m venv /opt/venv
  chroot "$work/root" apt-get clean
  rm -rf "$work/root/var/lib/apt/lists/"*
  tar -C "$work/root" -cf "$tarball.part" .
  mv "$tarball.part" "$tarball"
  rm -rf "$work"
  trap - EXIT
fi

# The python image: the cached tree plus the host's CA bundle and torch wheel (not cached:
# they are the host's, and may change).
layer=$(mktemp -d)
trap 'rm -rf "$layer"' EXIT
mkdir -p "$layer/etc/ssl/certs" "$layer/wheels"
cp /etc/ssl/certs/ca-certificates.crt "$layer/etc/ssl/certs/ca-certificates.crt"
shopt -s nullglob
for wheel in "$WHEELS"/torch-2.13.0+cpu-cp311-*.whl; do cp "$wheel" "$layer/wheels/"; done
shopt -u nullglob

python_path=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# imported once per tarball (an import makes a new image id each time, and every layer
# built on it would then miss the daemon's build cache)
if ! "$DOCKER" image inspect "mhinr-local/bookworm:$key" >/dev/null 2>&1; then
  "$DOCKER" import \
    --change "ENV PATH=$python_path" \
    --change "ENV LANG=C.UTF-8" \
    --change 'CMD ["python3"]' \
    - "mhinr-local/bookworm:$key" <"$tarball" >/dev/null
fi
"$DOCKER" tag "mhinr-local/bookworm:$key" mhinr-local/bookworm:base

"$DOCKER" build -q -t mhinr-local/python:3.11 -f - "$layer" >/dev/null <<'EOF'
FROM mhinr-local/bookworm:base
COPY . /
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
EOF

"$DOCKER" build -q -t mhinr-local/redis:7 - >/dev/null <<'EOF'
FROM mhinr-local/bookworm:base
RUN mkdir -p /data && chown redis:redis /data
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no"]
EOF

echo "built mhinr-local/python:3.11 and mhinr-local/redis:7 from Debian $SUITE"
