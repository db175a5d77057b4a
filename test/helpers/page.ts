/**
 * A page of the test's own for the client's lifecycle listeners (lib/client/queue.ts
 * `pageLifecycle` reads globalThis): a window and a document that count their listeners, on
 * globalThis only while `run` runs, so that each client or tab group made inside it has its own
 * page and the test dispatches `pagehide`, `pageshow`, `online`, `freeze` and `resume` to it alone.
 */
import type { Test } from 'tap'

/** An EventTarget that counts its listeners. */
export class Target extends EventTarget {
  listeners = 0

  override addEventListener (...args: Parameters<EventTarget['addEventListener']>): void {
    this.listeners++
    super.addEventListener(...args)
  }

  override removeEventListener (...args: Parameters<EventTarget['removeEventListener']>): void {
    this.listeners--
    super.removeEventListener(...args)
  }
}

export interface FakePage {
  window: Target
  document: Target
  /** Runs `fn` with globalThis as this page (its listener methods, its `document`). */
  run: <R>(fn: () => R) => R
}

export function fakePage (t: Test): FakePage {
  const g = globalThis as Record<string, unknown>
  const window = new Target()
  const document = new Target()
  const keys = ['addEventListener', 'removeEventListener', 'document']
  t.teardown(() => { for (const k of keys) delete g[k] })
  return {
    window,
    document,
    run: (fn) => {
      g.addEventListener = window.addEventListener.bind(window)
      g.removeEventListener = window.removeEventListener.bind(window)
      g.document = document
      try {
        return fn()
      } finally {
        for (const k of keys) delete g[k]
      }
    }
  }
}
