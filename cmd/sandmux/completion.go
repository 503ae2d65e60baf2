package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// The bash and zsh scripts follow urfave/cli's autocomplete templates
// (autocomplete/bash_autocomplete and zsh_autocomplete in urfave/cli v2)
// with the program name filled in: they ask `sandmux ...
// --generate-bash-completion` for the words that fit. The bash one also
// works without the bash-completion package and runs no eval, and is
// registered without the template's -o nospace: with it, bash added no
// space after a completed word (`sandmux prox<TAB>` gave `sandmux proxy`),
// and no word sandmux offers needs one left out (flags take their value
// after a space; a directory gets its slash and no space anyway).
const bashCompletion = `# bash completion for sandmux; load with
#   source <(sandmux completion bash)
# or save it as /etc/bash_completion.d/sandmux.

_sandmux_bash_autocomplete() {
  local cur words cword opts
  COMPREPLY=()
  if declare -F _init_completion >/dev/null 2>&1; then
    _init_completion -n "=:" || return
  else
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
    cur="${COMP_WORDS[COMP_CWORD]}"
  fi
  words=("${words[@]:0:$cword}")
  if [[ "$cur" == "-"* ]]; then
    opts=$("${words[@]}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${words[@]}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
  return 0
}

complete -o bashdefault -o default -F _sandmux_bash_autocomplete sandmux
`

const zshCompletion = `#compdef sandmux
# zsh completion for sandmux; load with
#   source <(sandmux completion zsh)
# after compinit (it defines compdef), or save it as _sandmux in a directory on your $fpath.

_sandmux_zsh_autocomplete() {
  local -a opts
  local cur
  cur=${words[-1]}
  if [[ "$cur" == "-"* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion)}")
  fi

  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}

compdef _sandmux_zsh_autocomplete sandmux
`

// completionShells are the shells `sandmux completion` writes a script for.
var completionShells = []string{"bash", "zsh", "fish"}

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		// `sandmux completion <TAB>` offers the shells.
		BashComplete: func(c *cli.Context) {
			if c.NArg() == 0 {
				_, _ = fmt.Fprintln(c.App.Writer, strings.Join(completionShells, "\n"))
			}
		},
		Description: "   source <(sandmux completion bash)     # bash, in ~/.bashrc\n" +
			"   source <(sandmux completion zsh)      # zsh, in ~/.zshrc after compinit\n" +
			"   sandmux completion fish > ~/.config/fish/completions/sandmux.fish",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("completion needs one shell: bash, zsh or fish")
			}
			var script string
			switch shell := c.Args().First(); shell {
			case "bash":
				script = bashCompletion
			case "zsh":
				script = zshCompletion
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return fmt.Errorf("fish completion: %w", err)
				}
				// urfave/cli leaves the backticks that mark a flag's
				// placeholder (`FILE`) in fish's descriptions; fish
				// shows them as they are.
				script = strings.ReplaceAll(s, "`", "")
			default:
				return fmt.Errorf("no completion for shell %q: use bash, zsh or fish", shell)
			}
			if !strings.HasSuffix(script, "\n") {
				script += "\n"
			}
			_, err := fmt.Fprint(c.App.Writer, script)
			return err
		},
	}
}
