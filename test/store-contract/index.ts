/**
 * The store contract: what every `MailboxStore` must do, tested only through the interface in
 * types/index.ts. Run it against a store with
 *
 *   storeContract(t, 'memory', async () => ({ store: new MemoryStore(), cleanup: async () => {} }))
 *
 * Rules the suite keeps so that any store (memory, Redis, ...) can pass it:
 * - time is only what the tests pass as `now`: each test starts at the real clock (so a store
 *   that also sets real expiry on its keys as a safety net is not disturbed) and advances it by
 *   hand, far beyond the configured TTLs, without waiting;
 * - cursors are the mailbox sequence numbers types/index.ts defines (0 = before the first
 *   message); most tests only compare them, the model-based test checks their values;
 * - events may arrive asynchronously (a Redis store delivers them through pub/sub), so the tests
 *   wait for the events they expect, and check that an event did NOT happen only after a later
 *   "fence" event (a `poll` event of their own) has arrived;
 * - TTL boundaries are not pinned to the millisecond: "before" and "after" are clearly apart.
 */
import type { Test } from 'tap'
import { sessionCases } from './sessions.js'
import { deliveryCases } from './delivery.js'
import { lossCases } from './loss.js'
import { eventCases } from './events.js'
import { roomCases } from './rooms.js'
import { expiryCases } from './expiry.js'
import { statsCases } from './stats.js'
import { modelCases } from './model.js'
import { makeSetup, type ContractStoreFactory } from './setup.js'

export type { ContractStoreFactory }

export function storeContract (t: Test, name: string, factory: ContractStoreFactory): void {
  const contract = { setup: makeSetup(factory), factory }
  t.test(`${name} store contract`, async (t) => {
    sessionCases(t, contract)
    deliveryCases(t, contract)
    lossCases(t, contract)
    eventCases(t, contract)
    roomCases(t, contract)
    expiryCases(t, contract)
    statsCases(t, contract)
    modelCases(t, contract)
  })
}
