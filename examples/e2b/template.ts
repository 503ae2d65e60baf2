// An E2B sandbox template that serves SSH, SCP and SFTP through sandmux:
// the static sandmux binary and OpenSSH server, with `sandmux server` as
// the start command on port 8081 (wss://8081-<sandbox-id>.e2b.app).
//
// Before building, put the linux/amd64 binary next to this file:
//   make dist && cp dist/sandmux-linux-amd64 examples/e2b/sandmux
// then build with build.ts:
//   npm install e2b && E2B_API_KEY=... npx tsx build.ts
//
// On the laptop: `sandmux ssh-config >> ~/.ssh/config`, then
// `ssh <sandbox-id>.e2b`.
import { Template, waitForPort } from 'e2b'

export const template = Template()
  // The base the websocat recipe uses: it comes with what sshd needs.
  .fromUbuntuImage('25.04')
  .aptInstall(['openssh-server'])
  .copy('sandmux', '/usr/local/bin/sandmux', { user: 'root', mode: 0o755 })
  // The start command runs once, at build time, and is snapshotted with
  // the sandbox: sandmux draws its per-session secrets when a session is
  // made, never at start-up, so every sandbox gets its own.
  // Listens on :8081 and forwards each stream to sshd on 127.0.0.1:22.
  // Add --token-file FILE (clients then need the token: SANDMUX_TOKEN or
  // --token-file), or use E2B's restricted traffic, if the sandbox URL
  // must not be open.
  .setStartCmd('sandmux server', waitForPort(8081))
