/**
 * A tiny request/response layer over the `child_process.fork` IPC channel: the harness (bench/run.ts)
 * drives the server process and the load process with it, and reads the server's own CPU and
 * memory figures through it, so the load generator's cost never blurs the server's.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'

type Handler = (args: any) => unknown

interface Request { id: number, cmd: string, args: unknown }
interface Reply { id: number, ok: boolean, result?: unknown, error?: string }

/** In a child: answers the parent's calls with `handlers`, and exits when the parent goes away. */
export function serve (handlers: Record<string, Handler>): void {
  process.on('disconnect', () => process.exit(0))
  process.on('message', (raw) => {
    const req = raw as Request
    const handler = handlers[req.cmd]
    const reply = (r: Reply): void => { if (process.connected) process.send?.(r) }
    if (handler === undefined) {
      reply({ id: req.id, ok: false, error: `unknown command ${req.cmd}` })
      return
    }
    Promise.resolve()
      .then(() => handler(req.args))
      .then(
        (result) => reply({ id: req.id, ok: true, result }),
        (err: unknown) => reply({ id: req.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) })
      )
  })
  process.send?.({ ready: true })
}

/** In the parent: one forked child that answers calls. */
export class Peer {
  readonly child: ChildProcess
  readonly name: string
  private nextId = 1
  private readonly pending = new Map<number, { resolve: (v: any) => void, reject: (e: Error) => void, timer: NodeJS.Timeout }>()
  private readonly ready: Promise<void>
  private exited = false

  /**
   * Forks `file` (in bench/) with `args`. With `cpu`, the child runs under `taskset -c cpu` (which
   * execs Node in its place, same pid and IPC channel), so that it and every thread it starts
   * stay on that CPU from its first instruction.
   */
  constructor (file: string, args: string[], name: string, opts: { execArgv?: string[], cpu?: number } = {}) {
    this.name = name
    const execArgv = ['--import', 'tsx', '--expose-gc', ...(opts.execArgv ?? [])]
    const stdio: ['ignore', 'inherit', 'inherit', 'ipc'] = ['ignore', 'inherit', 'inherit', 'ipc']
    this.child = opts.cpu === undefined
      ? fork(join(__dirname, file), args, { execArgv, stdio })
      : spawn('taskset', ['-c', String(opts.cpu), process.execPath, ...execArgv, join(__dirname, file), ...args], { stdio })
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s`)), 30_000)
      this.child.on('message', (raw) => {
        const msg = raw as Reply & { ready?: boolean }
        if (msg.ready === true) {
          clearTimeout(timer)
          resolve()
          return
        }
        const p = this.pending.get(msg.id)
        if (p === undefined) return
        this.pending.delete(msg.id)
        clearTimeout(p.timer)
        if (msg.ok) p.resolve(msg.result)
        else p.reject(new Error(`${name}: ${msg.error ?? 'failed'}`))
      })
      this.child.on('exit', (code, signal) => {
        this.exited = true
        clearTimeout(timer)
        reject(new Error(`${name} exited (${code ?? signal}) before it was ready`))
        for (const p of this.pending.values()) {
          clearTimeout(p.timer)
          p.reject(new Error(`${name} exited (${code ?? signal})`))
        }
        this.pending.clear()
      })
    })
  }

  async call<T = unknown>(cmd: string, args: unknown = {}, timeoutMs = 60_000): Promise<T> {
    await this.ready
    if (this.exited) throw new Error(`${this.name} has exited`)
    const id = this.nextId++
    return await new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new Error(`${this.name}: ${cmd} timed out after ${timeoutMs} ms`))
      }, timeoutMs)
      this.pending.set(id, { resolve, reject, timer })
      this.child.send({ id, cmd, args })
    })
  }

  /** Asks the child to stop, then ends it by its pid if it does not exit within `graceMs`. */
  async stop (graceMs = 10_000): Promise<void> {
    if (this.exited) return
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()))
    try {
      await this.call('stop', {}, graceMs)
    } catch {
      // It may have exited while answering; the kill below covers a hung child.
    }
    const timer = setTimeout(() => { if (!this.exited) this.child.kill('SIGKILL') }, graceMs)
    await exited
    clearTimeout(timer)
  }
}
