#!/usr/bin/env bash
# make demo: the whole job on loopback. A throwaway sshd and `sandmux server`
# stand in for the sandbox; ssh, scp and sftp run through `sandmux proxy`,
# several at once, all sharing one WebSocket held by the agent.
# Needs only the OpenSSH client and server. Cleans up after itself.
set -euo pipefail

BIN=${BIN:-$(pwd)/bin/sandmux}
SSHD=${SSHD:-/usr/sbin/sshd}
for prog in "$SSHD" ssh scp sftp ssh-keygen; do
  command -v "$prog" >/dev/null 2>&1 || { echo "demo: $prog not found; install it with: apt-get install openssh-server openssh-client" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/sandmux-demo.XXXXXX)
AGENT_DIR="$WORK/agent"
pids=()
. "$(dirname "$0")/demo-steps.sh"
trap cleanup EXIT

step "a throwaway sshd on loopback (the sandbox's sshd)"
[ "$(id -u)" = 0 ] && mkdir -p /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$WORK/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/id"
cp "$WORK/id.pub" "$WORK/authorized_keys"
SSH_PORT=$(free_port)
cat > "$WORK/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $SSH_PORT
HostKey $WORK/host_key
AuthorizedKeysFile $WORK/authorized_keys
PidFile none
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
MaxStartups 100:30:200
MaxSessions 100
CONF
"$SSHD" -D -e -f "$WORK/sshd_config" 2>"$WORK/sshd.log" &
pids+=($!)
wait_for sshd bash -c "exec 3<>/dev/tcp/127.0.0.1/$SSH_PORT"
echo "sshd on 127.0.0.1:$SSH_PORT"

step "sandmux server in front of it (what runs in the sandbox on :8081)"
WS_PORT=$(free_port)
# A short keepalive so the pause below is noticed in a second, not 20.
export SANDMUX_KEEPALIVE=1s
"$BIN" server --listen "127.0.0.1:$WS_PORT" --target "127.0.0.1:$SSH_PORT" 2>"$WORK/server.log" &
SERVER_PID=$!
pids+=($SERVER_PID)
wait_for "sandmux server" bash -c "exec 3<>/dev/tcp/127.0.0.1/$WS_PORT"
echo "sandmux server on ws://127.0.0.1:$WS_PORT -> 127.0.0.1:$SSH_PORT"

echo "* ssh-keyscan 127.0.0.1 $(cut -d' ' -f1-2 "$WORK/host_key.pub")" > "$WORK/known_hosts"
sed -i 's/^\* ssh-keyscan 127.0.0.1 /* /' "$WORK/known_hosts"
PROXY="$BIN proxy --url ws://127.0.0.1:$WS_PORT --agent-dir $AGENT_DIR %h"
OPTS=(-F /dev/null -i "$WORK/id" -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes
      -o UserKnownHostsFile="$WORK/known_hosts" -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes
      -o LogLevel=ERROR -o User="$(id -un)" -o ProxyCommand="$PROXY")
echo "ProxyCommand: $PROXY"

step "ssh through the tunnel"
ssh "${OPTS[@]}" sandbox 'echo "hello from $(hostname) via sandmux"'

demo_transfers "scp 32 MiB up and back, checksums compared"
demo_pause

step "sandmux status"
"$BIN" status --agent-dir "$AGENT_DIR"

step "done: cleaning up"
