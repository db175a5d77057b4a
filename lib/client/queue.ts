/**
 * Small data structures of the client: the queue behind one async iteration, the bounded window
 * of recent message ids (deduplication), and a cancellable sleep.
 */

type Timer = ReturnType<typeof setTimeout>

/** Remembers the last `size` ids (a ring buffer over a Set): bounded memory. */
export class RecentIds {
  private readonly ring: Array<string | undefined>
  private readonly set = new Set<string>()
  private next = 0

  constructor (size: number) {
    this.ring = new Array<string | undefined>(Math.max(1, size))
  }

  /** True when the id was new (and is now remembered). */
  add (id: string): boolean {
    if (this.set.has(id)) return false
    const old = this.ring[this.next]
    if (old !== undefined) this.set.delete(old)
    this.ring[this.next] = id
    this.next = (this.next + 1) % this.ring.length
    this.set.add(id)
    return true
  }
}

/** A sleep that `cancel()` ends early (resolving, not rejecting). */
export interface Sleep { promise: Promise<void>, cancel: () => void }

export function sleep (ms: number): Sleep {
  let timer: Timer | undefined
  let done: () => void = () => {}
  const promise = new Promise<void>(resolve => {
    done = resolve
    timer = setTimeout(resolve, ms)
  })
  return {
    promise,
    cancel () {
      clearTimeout(timer)
      done()
    }
  }
}

/** The queue behind one async iteration. */
export class MessageQueue<M> implements AsyncIterator<M> {
  private readonly items: M[] = []
  private readonly waiting: Array<(result: IteratorResult<M>) => void> = []
  private ended = false

  constructor (private readonly onReturn: () => void, private readonly onTake: () => void) {}

  get length (): number {
    return this.items.length
  }

  push (...items: M[]): void {
    if (this.ended) return
    for (const item of items) {
      const resolve = this.waiting.shift()
      if (resolve !== undefined) resolve({ value: item, done: false })
      else this.items.push(item)
    }
  }

  end (): void {
    this.ended = true
    for (const resolve of this.waiting.splice(0)) resolve({ value: undefined, done: true })
  }

  async next (): Promise<IteratorResult<M>> {
    if (this.items.length > 0) {
      const value = this.items.shift() as M
      this.onTake()
      return { value, done: false }
    }
    if (this.ended) return { value: undefined, done: true }
    return await new Promise(resolve => this.waiting.push(resolve))
  }

  async return (): Promise<IteratorResult<M>> {
    this.items.length = 0
    this.end()
    this.onReturn()
    return { value: undefined, done: true }
  }
}
