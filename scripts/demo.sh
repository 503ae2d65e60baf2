#!/usr/bin/env bash
# make demo: the whole job on loopback. `sandmux server --ssh embedded`
# stands in for the sandbox: it is the SSH server too, so no sshd runs.
# ssh, scp and sftp run through `sandmux proxy`, several at once, all
# sharing one WebSocket held by the agent.
# Needs only the OpenSSH client (ssh, scp, sftp, ssh-keygen). Cleans up after itself.
set -euo pipefail

BIN=${BIN:-$(pwd)/bin/sandmux}
for prog in ssh scp sftp ssh-keygen; do
  command -v "$prog" >/dev/null 2>&1 || { echo "demo: $prog not found; install it with: apt-get install openssh-client" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/sandmux-demo.XXXXXX)
AGENT_DIR="$WORK/agent"
STATE_DIR="$WORK/state"
pids=()
. "$(dirname "$0")/demo-steps.sh"
trap cleanup EXIT

step "sandmux server --ssh embedded: the sandbox side, SSH server included (no sshd)"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/id"
cp "$WORK/id.pub" "$WORK/authorized_keys"
WS_PORT=$(free_port)
# A short keepalive so the pause below is noticed in a second, not 20.
export SANDMUX_KEEPALIVE=1s
"$BIN" server --listen "127.0.0.1:$WS_PORT" --ssh embedded \
  --authorized-keys "$WORK/authorized_keys" --state-dir "$STATE_DIR" \
  --max-startups 100:30:200 2>"$WORK/server.log" &
SERVER_PID=$!
pids+=($SERVER_PID)
wait_for "sandmux server" bash -c "exec 3<>/dev/tcp/127.0.0.1/$WS_PORT"
echo "sandmux server on ws://127.0.0.1:$WS_PORT, its own SSH server on $(grep -o 'msg="embedded ssh server" addr=[^ ]*' "$WORK/server.log" | cut -d= -f3)"
[ -e "$STATE_DIR/ssh_host_ed25519_key" ] && { echo "demo: host key made at start-up" >&2; exit 1; }
echo "no host key yet: it is made on first use, so every sandbox cloned from a snapshot gets its own"

step "the host key, to pin in known_hosts (sandmux server --print-host-key)"
"$BIN" server --print-host-key --state-dir "$STATE_DIR" 2>/dev/null | tee "$WORK/hostkey"
echo "* $(head -1 "$WORK/hostkey")" > "$WORK/known_hosts"

PROXY="$BIN proxy --url ws://127.0.0.1:$WS_PORT --agent-dir $AGENT_DIR %h"
OPTS=(-F /dev/null -i "$WORK/id" -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes
      -o UserKnownHostsFile="$WORK/known_hosts" -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes
      -o LogLevel=ERROR -o User="$(id -un)" -o ProxyCommand="$PROXY")
echo "ProxyCommand: $PROXY"

step "ssh through the tunnel"
ssh "${OPTS[@]}" sandbox 'echo "hello from $(hostname) via sandmux, served by the embedded server"'
set +e; ssh "${OPTS[@]}" sandbox 'echo to stderr >&2; exit 3' 2>&1; code=$?; set -e
echo "exit status: $code"

demo_transfers "scp 32 MiB up and back, checksums compared (scp speaks SFTP to the embedded server)"
echo "SSH logins the embedded server accepted: $(grep -c 'msg="ssh login"' "$WORK/server.log")"

demo_pause

step "sandmux status"
"$BIN" status --agent-dir "$AGENT_DIR"

step "done: cleaning up"
