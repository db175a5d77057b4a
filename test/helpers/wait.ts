/** Waiting in tests: every wait is bounded in time, and a wait that runs out says what it waited for. */
import type { TestServer } from './server.js'

export function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Resolves with fn's first truthy result, checking every `interval` ms; throws after `timeout` ms. */
export async function waitFor<T> (fn: () => T | Promise<T>, what: string, timeout = 3000, interval = 5): Promise<T> {
  const deadline = Date.now() + timeout
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`)
    await sleep(interval)
  }
}

/** Waits until this instance holds exactly `n` polls. */
export function waitHeld (s: TestServer, n: number, timeout = 3000): Promise<boolean> {
  return waitFor(async () => (await s.app.longPoll.stats()).heldPolls === n, `${n} held poll(s)`, timeout)
}
