// Preloaded with `node --import` into a child whose peak memory the bench wants: the kernel's
// high-water mark for the whole process (all threads), printed as the process exits.

process.on('exit', () => {
  process.stderr.write(`bench-peak-rss-kib: ${process.resourceUsage().maxRSS}\n`)
})
