/**
 * The consumer side of the client: event listeners, async iterations, the messages that arrived
 * before anyone consumed them, and backpressure. The session and poll loop (index.ts) hands it
 * each new message (`deliver`) and each event (`emit`); it does not know where they came from.
 */
import { MessageQueue, sleep, type Sleep } from './queue.js'
import type { ChatClientEvents, ChatEventName, ChatMessage, Profile } from './types.js'

export type Listener<E> = (event: E) => void

export class Inbox<T, P extends Profile> {
  private readonly listeners = new Map<ChatEventName, Set<Listener<any>>>()
  private readonly iterators = new Set<MessageQueue<ChatMessage<T, P>>>()
  /** Messages that arrived while nobody consumed them; handed to the first consumer. */
  private readonly pending: Array<ChatMessage<T, P>> = []
  private drained: Sleep | null = null

  /** `highWaterMark`: how far behind a consumer may fall before `waitForRoom` holds the next poll. */
  constructor (private readonly highWaterMark: number) {}

  /** Subscribes to an event. */
  on<K extends ChatEventName> (type: K, listener: Listener<ChatClientEvents<T, P>[K]>): void {
    let set = this.listeners.get(type)
    if (set === undefined) {
      set = new Set()
      this.listeners.set(type, set)
    }
    set.add(listener)
    if (type === 'message' && this.pending.length > 0) queueMicrotask(() => this.flushPending())
  }

  off<K extends ChatEventName> (type: K, listener: Listener<ChatClientEvents<T, P>[K]>): void {
    this.listeners.get(type)?.delete(listener)
  }

  /**
   * A new async iteration: every message from now on, plus any not yet consumed. When the client
   * is `closed`, it yields those not yet consumed and ends.
   */
  iterate (closed: boolean): AsyncIterator<ChatMessage<T, P>> {
    const queue = new MessageQueue<ChatMessage<T, P>>(() => {
      this.iterators.delete(queue)
      this.onDrain()
    }, () => this.onDrain())
    if (closed) {
      queue.push(...this.pending.splice(0))
      queue.end()
      return queue
    }
    this.iterators.add(queue)
    this.flushPending()
    return queue
  }

  /** Hands a new message to every consumer, or keeps it for the first one. */
  deliver (message: ChatMessage<T, P>): void {
    if (!this.hasConsumers()) {
      this.pending.push(message)
      return
    }
    for (const queue of this.iterators) queue.push(message)
    this.emit('message', message)
  }

  emit<K extends ChatEventName> (type: K, event: ChatClientEvents<T, P>[K]): void {
    const set = this.listeners.get(type)
    if (set === undefined) return
    for (const listener of [...set]) {
      try {
        listener(event)
      } catch (err) {
        // A throwing listener must not stop delivery; it is reported on `error` (never recursively).
        if (type !== 'error') this.emit('error', err instanceof Error ? err : new Error(String(err)))
      }
    }
  }

  /** Backpressure: resolves once no consumer is `highWaterMark` messages behind, or `signal` aborts. */
  async waitForRoom (signal: AbortSignal): Promise<void> {
    while (!signal.aborted && this.backlog() >= this.highWaterMark) {
      this.drained = sleep(1000)
      await this.drained.promise
      this.drained = null
    }
  }

  /** Cuts a `waitForRoom` short (the client is closing). */
  stopWaiting (): void {
    this.drained?.cancel()
  }

  /** Ends every iteration (the client closed). */
  end (): void {
    for (const queue of this.iterators) queue.end()
  }

  private hasConsumers (): boolean {
    return this.iterators.size > 0 || (this.listeners.get('message')?.size ?? 0) > 0
  }

  private flushPending (): void {
    if (this.pending.length === 0 || !this.hasConsumers()) return
    for (const message of this.pending.splice(0)) this.deliver(message)
    this.onDrain()
  }

  private backlog (): number {
    let most = this.pending.length
    for (const queue of this.iterators) most = Math.max(most, queue.length)
    return most
  }

  private onDrain (): void {
    if (this.drained !== null && this.backlog() < this.highWaterMark) this.drained.cancel()
  }
}
