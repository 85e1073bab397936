#!/bin/sh
# Entrypoint of localhost/gridlease-sshd: install the lease's SSH key, make host keys, run sshd.
# Host keys are made here, not at image build, so no two containers share a host key.
set -eu

key_file="${GRIDLEASE_SSH_AUTHORIZED_KEY_FILE:-/etc/gridlease/ssh/authorized_key}"
mkdir -p /root/.ssh /run/sshd
chmod 700 /root/.ssh
if [ -s "$key_file" ]; then
    cp "$key_file" /root/.ssh/authorized_keys
elif [ -n "${GRIDLEASE_SSH_AUTHORIZED_KEY:-}" ]; then
    printf '%s\n' "$GRIDLEASE_SSH_AUTHORIZED_KEY" > /root/.ssh/authorized_keys
else
    echo "gridlease-entrypoint: no SSH key (set GRIDLEASE_SSH_AUTHORIZED_KEY or mount $key_file)" >&2
    exit 64
fi
chmod 600 /root/.ssh/authorized_keys

# One Ed25519 host key: every current SSH client accepts it, and it takes milliseconds where
# `ssh-keygen -A` (RSA 3072 + ECDSA + Ed25519) takes about a second here, a whole block of the
# lease's start.
[ -s /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
# sshd starts sessions with a clean environment; hand the lease's (its env, NVIDIA_VISIBLE_DEVICES)
# to SSH sessions through ~/.ssh/environment (PermitUserEnvironment in sshd_config).
env | grep -v -E '^(HOME|PWD|SHLVL|_|HOSTNAME|GRIDLEASE_SSH_AUTHORIZED_KEY[A-Z_]*)=' \
    > /root/.ssh/environment || true
chmod 600 /root/.ssh/environment

if [ "$#" -gt 0 ]; then
    # A lease command runs beside sshd; sshd stays the container's main process.
    "$@" &
fi
exec /usr/sbin/sshd -D -e
