// Builds the template in template.ts as "sandmux-ssh".
import { Template, defaultBuildLogger } from 'e2b'
import { template } from './template'

await Template.build(template, 'sandmux-ssh', {
  cpuCount: 2,
  memoryMB: 2048,
  onBuildLogs: defaultBuildLogger(),
})
