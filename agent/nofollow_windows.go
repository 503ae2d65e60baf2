package agent

import "os"

// noFollow is the Unix open flag; Windows runs no agent.
const noFollow = 0

// linkCount is not asked of Windows, which runs no agent.
func linkCount(os.FileInfo) (uint64, bool) { return 0, false }
