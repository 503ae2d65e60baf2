# Steps both demos share. Sourced by demo.sh and demo-sshd.sh once BIN,
# WORK, AGENT_DIR and pids are set; the demo_* steps also need SERVER_PID
# and the ssh options OPTS.

# cleanup stops the agent and every process in pids and removes WORK.
cleanup() {
  "$BIN" agent --stop --agent-dir "$AGENT_DIR" >/dev/null 2>&1 || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

free_port() {
  local p
  for _ in $(seq 50); do
    p=$(( (RANDOM % 20000) + 30000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  echo "demo: no free port found" >&2; exit 1
}

wait_for() { # wait_for DESCRIPTION COMMAND...
  local what=$1; shift
  for _ in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "demo: $what did not come up" >&2; exit 1
}


# demo_transfers TITLE: scp up and back, an sftp batch, then 6 ssh, 3 scp
# and 3 sftp at once on the one shared WebSocket; every copy is compared.
demo_transfers() {
step "$1"
  head -c $((32 << 20)) /dev/urandom > "$WORK/big.bin"
  scp -q "${OPTS[@]}" "$WORK/big.bin" "sandbox:$WORK/big.remote"
  scp -q "${OPTS[@]}" "sandbox:$WORK/big.remote" "$WORK/big.back"
  sha256sum "$WORK/big.bin" "$WORK/big.back" | awk '{print $1}' | uniq | wc -l | grep -qx 1 && echo "sha256 equal: $(sha256sum "$WORK/big.bin" | cut -c1-16)…"
  
  step "sftp batch: put, ls, get, rm"
  printf 'put %s/big.bin %s/sftp.remote\nls -l %s/sftp.remote\nget %s/sftp.remote %s/sftp.back\nrm %s/sftp.remote\n' \
    "$WORK" "$WORK" "$WORK" "$WORK" "$WORK" "$WORK" > "$WORK/batch"
  sftp -q "${OPTS[@]}" -b "$WORK/batch" sandbox
  cmp "$WORK/big.bin" "$WORK/sftp.back" && echo "sftp round trip identical"
  
  step "6 ssh, 3 scp and 3 sftp at once, all on one WebSocket"
  local jobs_pids=() fail=0 i p
  for i in 1 2 3 4 5 6; do ssh "${OPTS[@]}" sandbox "echo ssh $i done" & jobs_pids+=($!); done
  for i in 1 2 3; do scp -q "${OPTS[@]}" "$WORK/big.bin" "sandbox:$WORK/par$i" && echo "scp $i done" & jobs_pids+=($!); done
  for i in 1 2 3; do echo "put $WORK/big.bin $WORK/sftp$i" | sftp -q "${OPTS[@]}" -b - sandbox >/dev/null && echo "sftp $i done" & jobs_pids+=($!); done
  for p in "${jobs_pids[@]}"; do wait "$p" || fail=1; done
  [ $fail = 0 ] || { echo "demo: a parallel transfer failed" >&2; exit 1; }
  for i in 1 2 3; do cmp -s "$WORK/big.bin" "$WORK/par$i" && cmp -s "$WORK/big.bin" "$WORK/sftp$i" || { echo "demo: copy $i differs" >&2; exit 1; }; done
  echo "all 6 copies identical"
  echo "WebSockets the server accepted: $(grep -c 'msg="session started"' "$WORK/server.log")"
}

# demo_pause: freeze the server (SIGSTOP, as an E2B pause does) for 4 s in
# the middle of an scp; the scp finishes on the same, resumed session.
demo_pause() {
step "a sandbox pause in the middle of an scp: the server is frozen (SIGSTOP) for 4 s"
  scp -q "${OPTS[@]}" "$WORK/big.bin" "sandbox:$WORK/paused.remote" &
  local scp_pid=$!
  sleep 0.3
  kill -STOP "$SERVER_PID"; echo "server frozen"
  sleep 4
  kill -CONT "$SERVER_PID"; echo "server thawed"
  wait "$scp_pid" || { echo "demo: scp across the pause failed" >&2; exit 1; }
  cmp "$WORK/big.bin" "$WORK/paused.remote" && echo "scp finished across the pause; copy identical"
  echo "WebSockets the server accepted: $(grep -c 'msg="session started"' "$WORK/server.log") (the session resumed instead of starting over: $(grep -c 'msg="session resumed"' "$WORK/server.log") resumption)"
}
