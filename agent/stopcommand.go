package agent

// DefaultStopCommand stops the agent in the default directory; a hint
// for an agent elsewhere adds its --agent-dir (Config.StopCommand).
const DefaultStopCommand = "sandmux agent --stop"

// stopCommand is cmd, or the default one when cmd is empty.
func stopCommand(cmd string) string {
	if cmd == "" {
		return DefaultStopCommand
	}
	return cmd
}
