/**
 * Summarizes the profiles written by `BENCH_PROFILE=1 npm run bench` into bench/results/profiles/:
 * `npx tsx bench/profile.ts bench/results/profiles/burst-plugin-memory-1000-100.cpuprofile [...]`.
 * For a `.cpuprofile`: the hottest functions by self time, the time spent under each function of
 * lib/ (inclusive), and self time per file, each as a % of the non-idle samples. For a
 * `.heapprofile` (allocations sampled over the same window): bytes allocated per function and file.
 */
import { readFileSync } from 'node:fs'
import { join, relative } from 'node:path'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  hitCount?: number
  children?: number[]
}

interface Profile { nodes: ProfileNode[], samples?: number[] }

const root = join(__dirname, '..')

/** `file` for TypeScript run through tsx (its line numbers are those of the transpiled code), else `file:line`. */
function where (url: string, line: number): string {
  if (url === '') return ''
  const path = url.startsWith('file://') ? relative(root, new URL(url).pathname) : url
  return path.endsWith('.ts') ? path : `${path}:${line + 1}`
}

function file (url: string): string {
  if (url === '') return '(native / V8)'
  const path = url.startsWith('file://') ? relative(root, new URL(url).pathname) : url
  const nm = path.lastIndexOf('node_modules/')
  if (nm !== -1) {
    const rest = path.slice(nm + 13).split('/')
    return `node_modules/${rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`
  }
  return path
}

function top (m: Map<string, number>, total: number, n: number): string[] {
  return [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([k, v]) => `${(v / total * 100).toFixed(1).padStart(5)} %  ${k}`)
}

export function summarize (path: string, n = 25): string {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as Profile
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const self = new Map<number, number>()
  if (profile.samples !== undefined) {
    for (const id of profile.samples) self.set(id, (self.get(id) ?? 0) + 1)
  } else {
    for (const node of profile.nodes) self.set(node.id, node.hitCount ?? 0)
  }
  const isIdle = (node: ProfileNode): boolean => node.callFrame.functionName === '(idle)'
  let total = 0
  for (const [id, c] of self) if (!isIdle(byId.get(id)!)) total += c

  const name = (node: ProfileNode): string =>
    `${node.callFrame.functionName === '' ? '(anonymous)' : node.callFrame.functionName} ${where(node.callFrame.url, node.callFrame.lineNumber)}`.trim()
  const selfByFn = new Map<string, number>()
  const selfByFile = new Map<string, number>()
  for (const [id, c] of self) {
    const node = byId.get(id)!
    if (isIdle(node) || c === 0) continue
    selfByFn.set(name(node), (selfByFn.get(name(node)) ?? 0) + c)
    selfByFile.set(file(node.callFrame.url), (selfByFile.get(file(node.callFrame.url)) ?? 0) + c)
  }

  // Inclusive time of this repository's own functions (lib/ and bench/), counted once per stack.
  const inclusive = new Map<string, number>()
  const walk = (id: number, onStack: Set<string>): number => {
    const node = byId.get(id)!
    let sum = self.get(id) ?? 0
    const key = name(node)
    const own = node.callFrame.url.includes('/lib/') && !node.callFrame.url.includes('node_modules')
    const fresh = own && !onStack.has(key)
    if (fresh) onStack.add(key)
    for (const child of node.children ?? []) sum += walk(child, onStack)
    if (fresh) {
      onStack.delete(key)
      inclusive.set(key, (inclusive.get(key) ?? 0) + sum)
    }
    return isIdle(node) ? 0 : sum
  }
  walk(profile.nodes[0].id, new Set())

  return [
    `# ${relative(root, path)}: ${total} non-idle samples (1 ms each)`,
    '', '## Self time by function', ...top(selfByFn, total, n),
    '', '## Inclusive time of lib/ functions', ...top(inclusive, total, n),
    '', '## Self time by file / package', ...top(selfByFile, total, 15),
    ''
  ].join('\n')
}

interface HeapNode {
  callFrame: { functionName: string, url: string, lineNumber: number }
  selfSize: number
  children?: HeapNode[]
}

/** Allocation profile (`.heapprofile`, sampled with collected objects included): bytes allocated per function and per file. */
export function summarizeHeap (path: string, n = 25): string {
  const { head } = JSON.parse(readFileSync(path, 'utf8')) as { head: HeapNode }
  const byFn = new Map<string, number>()
  const byFile = new Map<string, number>()
  const inclusive = new Map<string, number>()
  let total = 0
  const walk = (node: HeapNode, onStack: Set<string>): number => {
    const key = `${node.callFrame.functionName === '' ? '(anonymous)' : node.callFrame.functionName} ${where(node.callFrame.url, node.callFrame.lineNumber)}`.trim()
    total += node.selfSize
    if (node.selfSize > 0) {
      byFn.set(key, (byFn.get(key) ?? 0) + node.selfSize)
      byFile.set(file(node.callFrame.url), (byFile.get(file(node.callFrame.url)) ?? 0) + node.selfSize)
    }
    const own = node.callFrame.url.includes('/lib/') && !node.callFrame.url.includes('node_modules')
    const fresh = own && !onStack.has(key)
    if (fresh) onStack.add(key)
    let sum = node.selfSize
    for (const child of node.children ?? []) sum += walk(child, onStack)
    if (fresh) {
      onStack.delete(key)
      inclusive.set(key, (inclusive.get(key) ?? 0) + sum)
    }
    return sum
  }
  walk(head, new Set())
  return [
    `# ${relative(root, path)}: ${(total / 2 ** 20).toFixed(1)} MiB allocated (sampled estimate)`,
    '', '## Allocated by function (self)', ...top(byFn, total, n),
    '', '## Allocated under lib/ functions (inclusive)', ...top(inclusive, total, n),
    '', '## Allocated by file / package', ...top(byFile, total, 15),
    ''
  ].join('\n')
}

if (require.main === module) {
  const files = process.argv.slice(2)
  if (files.length === 0) {
    console.error('usage: tsx bench/profile.ts FILE.cpuprofile|FILE.heapprofile [...]')
    process.exitCode = 1
  }
  for (const f of files) console.log(f.endsWith('.heapprofile') ? summarizeHeap(f) : summarize(f))
}
