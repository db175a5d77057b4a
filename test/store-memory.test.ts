import t from 'tap'
import { MemoryStore } from '../lib/stores/memory.js'
import { storeContract } from './helpers/store-contract.js'

storeContract(t, 'memory', async () => ({ store: new MemoryStore(), cleanup: async () => {} }))
