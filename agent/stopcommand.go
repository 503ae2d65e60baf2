package agent

// defaultStopCommand stops the agent in the default directory.
const defaultStopCommand = "sandmux agent --stop"

// stopCommand is cmd, or the default one when cmd is empty.
func stopCommand(cmd string) string {
	if cmd == "" {
		return defaultStopCommand
	}
	return cmd
}
