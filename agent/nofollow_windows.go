package agent

// noFollow is the Unix open flag; Windows runs no agent.
const noFollow = 0
