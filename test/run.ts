/**
 * `npm run test:unit`: tap under c8, which measures line and branch coverage of lib/ (the
 * TypeScript sources, through the source maps tsx writes) and prints it per file. The gate, with
 * the thresholds of package.json "c8": all of lib/ at least `lines` % of lines and `branches` % of
 * branches (checked by c8), and each file of lib/ at least `lines` % of lines (checked here, from
 * coverage/coverage-summary.json), so that no file can hide behind the others.
 *
 * Without REDIS_URL the Redis tests skip, so nothing could cover the Redis store: it is then left
 * out of the figure and of the gate, and the output says so. CI sets REDIS_URL (.ci/run), so there
 * the gate counts all of lib/.
 *
 * Arguments go to tap (`npm run test:unit -- test/store-memory.test.ts`); a run of some files only
 * prints its figure without the gate, which is meant for the whole suite.
 */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { REDIS_URL } from './helpers/redis.js'

const root = join(__dirname, '..')
const { lines } = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { c8: { lines: number } }).c8
const files = process.argv.slice(2)
const whole = files.length === 0

const args = [require.resolve('c8/bin/c8.js')]
if (REDIS_URL === undefined) args.push('--exclude', 'lib/stores/redis*', '--exclude', 'lib/stores/redis/**')
if (!whole) args.push('--check-coverage=false')
args.push('tap', ...files)

console.log("# tap's own coverage is off (its 'No coverage generated' below is about that); c8 measures lib/")
const run = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' })
let status = run.status ?? 1

console.log(REDIS_URL === undefined
  ? '\n# coverage of lib/ without the Redis store (lib/stores/redis*): REDIS_URL is not set, so the Redis tests skipped;\n# CI sets it and counts all of lib/'
  : '\n# coverage of lib/, the Redis store included (REDIS_URL is set)')
if (whole) {
  const summary = JSON.parse(readFileSync(join(root, 'coverage', 'coverage-summary.json'), 'utf8')) as Record<string, { lines: { pct: number } }>
  const low = Object.entries(summary)
    .filter(([file, s]) => file !== 'total' && s.lines.pct < lines)
    .map(([file, s]) => `${relative(root, file)} ${s.lines.pct} %`)
  if (low.length > 0) {
    console.log(`# ERROR: under ${lines} % of lines: ${low.join(', ')}`)
    if (status === 0) status = 1
  } else {
    console.log(`# every file of lib/ has at least ${lines} % of its lines covered`)
  }
} else {
  console.log('# some test files only: thresholds not checked')
}
process.exitCode = status
