# An E2B sandbox template that serves SSH, SCP and SFTP through sandmux:
# the static sandmux binary and OpenSSH server, with `sandmux server` as
# the start command on port 8081 (wss://8081-<sandbox-id>.e2b.app).
#
# Before building, put the linux/amd64 binary next to this file:
#   make dist && cp dist/sandmux-linux-amd64 examples/e2b/sandmux
# then:
#   pip install e2b && E2B_API_KEY=... python template.py
#
# On the laptop: `sandmux ssh-config >> ~/.ssh/config`, then
# `ssh <sandbox-id>.e2b`.
from e2b import Template, default_build_logger, wait_for_port

template = (
    Template()
    # The base the websocat recipe uses: it comes with what sshd needs.
    .from_ubuntu_image("25.04")
    .apt_install(["openssh-server"])
    .copy("sandmux", "/usr/local/bin/sandmux", user="root", mode=0o755)
    # The start command runs once, at build time, and is snapshotted with
    # the sandbox: sandmux draws its per-session secrets when a session is
    # made, never at start-up, so every sandbox gets its own.
    # Listens on :8081 and forwards each stream to sshd on 127.0.0.1:22.
    # Add --token-file FILE (clients then need the token: SANDMUX_TOKEN or
    # --token-file), or use E2B's restricted traffic, if the sandbox URL
    # must not be open.
    .set_start_cmd("sandmux server", wait_for_port(8081))
)

if __name__ == "__main__":
    Template.build(
        template,
        "sandmux-ssh",
        cpu_count=2,
        memory_mb=2048,
        on_build_logs=default_build_logger(),
    )
