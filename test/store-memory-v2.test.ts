/**
 * The in-memory store v2: the store contract v2, plus what is particular to this store.
 */
import t from 'tap'
import { MemoryStore } from '../lib/stores/memory/index.js'
import { storeContract } from './store-contract-v2/index.js'

storeContract(t, 'memory', async () => ({ store: new MemoryStore(), cleanup: async () => {} }), { modelRuns: 200 })
