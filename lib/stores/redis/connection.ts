/**
 * The Redis store's two connections and its outage detection. Commands go through the
 * application's client; events come in on one subscriber connection made with
 * `client.duplicate()`. The store works only while both are ready: when either closes, the
 * commands in flight fail at once, one 'unavailable' event goes out, and commands fail at once
 * (never waiting in ioredis's offline queue) until both are ready again and the subscription
 * is back.
 */
import type { Redis } from 'ioredis'
import { StoreUnavailableError } from '../../errors.js'
import type { StoreEvent, StoreListener } from '../../../types/index.js'

/** Resolves when the connection is ready; rejects if it ends for good first. */
function whenReady (conn: Redis): Promise<void> {
  if (conn.status === 'ready') return Promise.resolve()
  if (conn.status === 'end') return Promise.reject(new StoreUnavailableError())
  return new Promise((resolve, reject) => {
    const onReady = (): void => { conn.off('end', onEnd); resolve() }
    const onEnd = (): void => { conn.off('ready', onReady); reject(new StoreUnavailableError()) }
    conn.once('ready', onReady)
    conn.once('end', onEnd)
    if (conn.status === 'wait') conn.connect().catch(() => {})
  })
}

export class RedisConnection {
  private readonly client: Redis
  private readonly channel: string
  private readonly subscriberName: string
  private subscriber: Redis | null = null
  private listener: StoreListener | null = null
  private down = false
  private closed = false
  /** Rejecters of the commands in flight, so that a lost connection fails them at once. */
  private readonly pending = new Set<(err: Error) => void>()

  /**
   * `channel` is the events channel; `subscriberName` the subscriber's name in CLIENT LIST
   * (characters that a connection name does not allow become '_').
   */
  constructor (client: Redis, channel: string, subscriberName: string) {
    this.client = client
    this.channel = channel
    this.subscriberName = subscriberName.replace(/[^\x21-\x7e]/g, '_')
  }

  /** Waits for the client, opens the subscriber and subscribes; events then go to `listener`. */
  async open (listener: StoreListener): Promise<void> {
    this.listener = listener
    await whenReady(this.client)
    const sub = this.client.duplicate({ connectionName: this.subscriberName })
    this.subscriber = sub
    sub.on('error', () => {}) // an outage is reported through 'close' → 'unavailable'
    sub.on('message', this.onMessage)
    await whenReady(sub)
    await sub.subscribe(this.channel)
    sub.on('close', this.onClose)
    sub.on('ready', this.onReady)
    this.client.on('close', this.onClose)
    this.client.on('ready', this.onReady)
  }

  /**
   * Runs one command, failing at once when Redis is not reachable: never let a request wait in
   * ioredis's offline queue, and fail the commands in flight when the connection drops.
   */
  run<T> (command: () => Promise<T>): Promise<T> {
    if (this.down || this.closed || this.client.status !== 'ready' || this.subscriber?.status !== 'ready') {
      return Promise.reject(new StoreUnavailableError())
    }
    return new Promise<T>((resolve, reject) => {
      this.pending.add(reject)
      command().then((value) => {
        this.pending.delete(reject)
        resolve(value)
      }, (err: unknown) => {
        this.pending.delete(reject)
        reject(err)
      })
    })
  }

  /** Quits the subscriber (only it: the client is the application's) and stops reporting. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.client.off('close', this.onClose)
    this.client.off('ready', this.onReady)
    const sub = this.subscriber
    this.subscriber = null
    if (sub !== null) {
      sub.off('close', this.onClose)
      sub.off('ready', this.onReady)
      sub.off('message', this.onMessage)
      if (sub.status === 'ready') {
        // QUIT answers before the socket closes; wait for 'end' (bounded) so nothing outlives close().
        const ended = new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 1000)
          timer.unref()
          sub.once('end', () => { clearTimeout(timer); resolve() })
        })
        await sub.quit().catch(() => { sub.disconnect() })
        await ended
      } else if (sub.status !== 'end') {
        sub.disconnect()
      }
    }
  }

  private emit (event: StoreEvent): void {
    const listener = this.listener
    if (listener === null || this.closed) return
    try {
      listener(event)
    } catch {
      // a listener's bug must not break the subscriber connection
    }
  }

  private readonly onMessage = (channel: string, text: string): void => {
    if (channel !== this.channel) return
    let event: StoreEvent
    try {
      event = JSON.parse(text) as StoreEvent
    } catch {
      return
    }
    this.emit(event)
  }

  private readonly onClose = (): void => {
    if (this.closed) return
    const err = new StoreUnavailableError()
    for (const reject of this.pending) reject(err)
    this.pending.clear()
    if (!this.down) {
      this.down = true
      this.emit({ type: 'unavailable' })
    }
  }

  private readonly onReady = (): void => {
    const sub = this.subscriber
    if (!this.down || this.closed || sub === null) return
    if (this.client.status !== 'ready' || sub.status !== 'ready') return
    // ioredis resubscribes on reconnect; a PING answered after it proves the subscription is back.
    sub.ping().then(() => {
      if (this.client.status === 'ready' && sub.status === 'ready') this.down = false
    }, () => {})
  }
}
