/**
 * The store contract v2: what every `MailboxStore` of lib/stores/store.ts must do, tested only
 * through that interface. Run it against a store with
 *
 *   storeContract(t, 'memory', async () => ({ store: new MemoryStore(), cleanup: async () => {} }))
 *
 * The rules the cases keep (time, opaque cursors, asynchronous events) are in helpers.ts; the
 * cases are grouped by theme, one file each.
 */
import type { Test } from 'tap'
import { eventCases } from './events.js'
import { expiryCases } from './expiry.js'
import { makeSetup, type ContractOptions, type ContractStoreFactory } from './helpers.js'
import { historyCases } from './history.js'
import { lossCases } from './losses.js'
import { modelCases } from './model.js'
import { rateCases } from './rates.js'
import { readingCases } from './reading.js'
import { roomCases } from './rooms.js'
import { sessionCases } from './sessions.js'
import { statsCases } from './stats.js'

export type { ContractOptions, ContractStoreFactory } from './helpers.js'

export function storeContract (t: Test, name: string, factory: ContractStoreFactory, options: ContractOptions = {}): void {
  const setup = makeSetup(factory)
  const runs = Number(process.env.MODEL_RUNS ?? options.modelRuns ?? 60)
  t.test(`${name} store contract v2`, async (t) => {
    t.test('sessions and users', async (t) => { sessionCases(t, setup) })
    t.test('publishing and reading', async (t) => { readingCases(t, setup) })
    t.test('losses and missed', async (t) => { lossCases(t, setup) })
    t.test('events and holds', async (t) => { eventCases(t, setup) })
    t.test('rooms and members', async (t) => { roomCases(t, setup) })
    t.test('room history', async (t) => { historyCases(t, setup) })
    t.test('expiry', async (t) => { expiryCases(t, setup) })
    t.test('rate limits', async (t) => { rateCases(t, setup) })
    t.test('stats', async (t) => { statsCases(t, setup) })
    t.test('model', async (t) => { modelCases(t, factory, runs) })
  })
}
