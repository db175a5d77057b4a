/**
 * `npm run test:unit`: tap under c8, which measures line and branch coverage of lib/ (the
 * TypeScript sources, through the source maps tsx writes) and prints it per file. The gate, with
 * the thresholds of package.json "c8": all of lib/ at least `lines` % of lines and `branches` % of
 * branches (checked by c8), and each file of lib/ at least `lines` % of lines (checked here), so
 * that no file can hide behind the others.
 *
 * - Without REDIS_URL the Redis tests skip, so nothing could cover the Redis store: it is then left
 *   out of the figure and of the gate, and the output says so. CI sets REDIS_URL (.ci/run), so
 *   there the gate counts all of lib/.
 * - Files of types only (nothing of them runs: TypeScript compiles them to nothing) are left out,
 *   by name in the output.
 * - The per-file check does not count an uncovered line that holds no code of ours and stands
 *   alone (the line before it is covered): tsx's source maps put esbuild's module glue (helpers
 *   it never calls, the CommonJS export annotation `0 && (module.exports = …)`) on a file's
 *   opening `/**` or on a closing `}`. The output names those lines. c8's own figures (the
 *   table, the global gate) do count them.
 *
 * Arguments go to tap (`npm run test:unit -- test/store-memory.test.ts`); a run of some files only
 * prints its figure without the gate, which is meant for the whole suite.
 */
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import ts from 'typescript'
import { REDIS_URL } from './helpers/redis.js'

const root = join(__dirname, '..')
const { lines: threshold } = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { c8: { lines: number } }).c8
const files = process.argv.slice(2)
const whole = files.length === 0

function sources (dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : /\.m?ts$/.test(e.name) ? [join(dir, e.name)] : [])
}

/** True when TypeScript compiles the file to nothing but the module marker. */
function typesOnly (file: string): boolean {
  const out = ts.transpileModule(readFileSync(join(root, file), 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.CommonJS, removeComments: true }
  }).outputText
  return out.replace('"use strict";', '').replace('Object.defineProperty(exports, "__esModule", { value: true });', '').trim() === ''
}

const withoutRedis = REDIS_URL === undefined
const leftOut = sources('lib').filter(typesOnly)
const excludes = [...leftOut, ...(withoutRedis ? ['lib/stores/redis*', 'lib/stores/redis/**'] : [])]

const args = [require.resolve('c8/bin/c8.js'), ...excludes.flatMap((x) => ['--exclude', x])]
if (!whole) args.push('--check-coverage=false')
args.push('tap', ...files)

console.log("# tap's own coverage is off (its 'No coverage generated' below is about that); c8 measures lib/")
const run = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' })
let status = run.status ?? 1

console.log(withoutRedis
  ? '\n# coverage of lib/ without the Redis store (lib/stores/redis*): REDIS_URL is not set, so the Redis tests skipped;\n# CI sets it and counts all of lib/'
  : '\n# coverage of lib/, the Redis store included (REDIS_URL is set)')
if (leftOut.length > 0) console.log(`# left out, types only (nothing of them runs): ${leftOut.join(', ')}`)

interface FileCoverage {
  statementMap: Record<string, { start: { line: number, column: number }, end: { line: number, column: number } }>
  s: Record<string, number>
}

/** The text of a range (c8 makes one statement of each line). */
function text (source: string[], r: FileCoverage['statementMap'][string]): string {
  return (source[r.start.line - 1] ?? '').slice(r.start.column, r.start.line === r.end.line ? r.end.column : undefined)
}

/** A range with no code of ours in it: a comment opener, or closing punctuation (`}`, `} as const`). */
const NO_CODE = /^\s*(\/\*\*?|[}\])]+(\s+as\s+const)?[;,]?)\s*$/

if (whole) {
  const coverage = JSON.parse(readFileSync(join(root, 'coverage', 'coverage-final.json'), 'utf8')) as Record<string, FileCoverage>
  const low: string[] = []
  const glue: string[] = []
  for (const [path, cov] of Object.entries(coverage)) {
    const file = relative(root, path)
    const source = readFileSync(path, 'utf8').split('\n')
    const ids = Object.keys(cov.statementMap)
    const uncovered = new Set(ids.filter((id) => cov.s[id] === 0).map((id) => cov.statementMap[id].start.line))
    const missed: number[] = []
    for (const id of ids) {
      if (cov.s[id] !== 0) continue
      const range = cov.statementMap[id]
      // Glue stands alone: a `}` that closes a block no test ran is part of that block.
      if (NO_CODE.test(text(source, range)) && !uncovered.has(range.start.line - 1)) glue.push(`${file}:${range.start.line}`)
      else missed.push(range.start.line)
    }
    const pct = ids.length === 0 ? 100 : 100 * (ids.length - missed.length) / ids.length
    if (pct < threshold) low.push(`${file} ${pct.toFixed(2)} % (lines ${missed.join(',')})`)
  }
  if (glue.length > 0) console.log(`# not counted per file, no code of ours on them (esbuild's module glue): ${glue.join(', ')}`)
  if (low.length > 0) {
    console.log(`# ERROR: under ${threshold} % of lines: ${low.join('; ')}`)
    if (status === 0) status = 1
  } else {
    console.log(`# every file of lib/ has at least ${threshold} % of its lines covered`)
  }
} else {
  console.log('# some test files only: thresholds not checked')
}
process.exitCode = status
