/**
 * Lua libraries of the Redis store: message logs (the key layout is in ./index.ts).
 *
 * A log `L` (`all`, `r:<room>`, `s:<id>`, `u:<user>`) is a sorted set `P l:<L>` of entries
 * `<ts>|<json>` scored by the global sequence `g`, and a count `last` (how many entries it ever
 * received), field L of the hash `P last` (one HMGET reads the counts of all of a session's
 * logs; for a session's inbox, field `n` of the session hash). Entries leave only from the
 * head, so `trimmed = last - ZCARD`, and the entry at position `p` has rank `p - trimmed - 1`.
 *
 * A log that is created (again) starts at `last = G`, the global sequence, so that positions in
 * a log of one name only grow: a membership that outlived its log (only after a backstop TTL)
 * finds its positions trimmed, which is what happened to them.
 *
 * A room membership that ends with entries unread keeps a private copy of them, a log
 * `x:<id>:<n>` (at most maxMailboxMessages entries), so that the room's log can still be trimmed
 * by count and deleted when nobody is in the room; its last is the membership's `until`.
 */
import { lib } from './lua.js'

/** Logs as data: keys, positions, entries; no configuration. */
export const LOGS = lib('logs', {}, [], `
local function logKey (L) return P .. 'l:' .. L end
local function isRoom (L) return string.sub(L, 1, 2) == 'r:' end
local function isInbox (L) return string.sub(L, 1, 2) == 's:' end
-- A private copy of a room's entries that a session left with unread (see keepUnread).
local function isCopy (L) return string.sub(L, 1, 2) == 'x:' end
-- Where the log's last is kept: a hash and its field.
local function lastRef (L)
  if isInbox(L) then return P .. 's:' .. string.sub(L, 3), 'n' end
  return P .. 'last', L
end
-- The log's last, or nil when the log does not exist.
local function logLast (L)
  local key, field = lastRef(L)
  local n = redis.call('HGET', key, field)
  if n then return tonumber(n) end
  return nil
end
-- The log's last, creating the log (at the global sequence) when it does not exist.
local function ensureLog (L)
  local key, field = lastRef(L)
  local n = redis.call('HGET', key, field)
  if n then return tonumber(n) end
  local g = tonumber(redis.call('GET', P .. 'g') or '0')
  redis.call('HSET', key, field, num(g))
  -- entries of an earlier log whose count was lost (only after a backstop TTL): not this log's
  local stray = redis.call('ZCARD', logKey(L))
  if stray > 0 then
    redis.call('DEL', logKey(L))
    stat('queued', -stray)
  end
  return g
end
local function entryTs (e) return tonumber(string.sub(e, 1, string.find(e, '|', 1, true) - 1)) end
local function entryJson (e) return string.sub(e, string.find(e, '|', 1, true) + 1) end
-- Deletes a log that nobody reads any more (its entries, its count, its index entry).
local function deleteLog (L)
  local lk = logKey(L)
  stat('queued', -redis.call('ZCARD', lk))
  redis.call('DEL', lk)
  if not isInbox(L) then redis.call('HDEL', P .. 'last', L) end
  redis.call('ZREM', P .. 'lx', L)
end
-- A room nobody is in any more (its former members keep copies of what they had not read):
-- its join counter goes; its log too, unless it keeps history (history true) and has entries
-- (then it goes when the last one is trimmed).
local function roomLeft (L, history)
  redis.call('HDEL', P .. 'joins', L)
  if not history or redis.call('EXISTS', logKey(L)) == 0 then deleteLog(L) end
end
`)

/**
 * Retention: what the scripts that append to or read a log trim from its head, and the index
 * `P lx` (log → the time its head may go, never later than the real one) with which the sweep
 * frees expired entries of logs nobody touches, without a timer per message.
 */
export const RETENTION = lib('retention', {
  messageTtl: 'number',
  maxMailbox: 'number',
  historyMax: 'number',
  historyAge: 'number',
  gcMargin: 'number'
}, [LOGS], `
-- When the entry at position pos of log L (whose last is last) may be removed by age.
local function dropTime (L, ts, pos, last)
  local t = ts + messageTtl
  if historyMax > 0 and isRoom(L) and pos > last - historyMax and ts + historyAge > t then t = ts + historyAge end
  return t
end
-- How many entries log L may keep at most.
local function logCap (L)
  if historyMax > maxMailbox and isRoom(L) then return historyMax end
  return maxMailbox
end
-- Removes from the head of log L what nobody needs: beyond its cap, or past messageTtl and not
-- kept as room history. Stops at the first entry it keeps (ts is in acceptance order, but a
-- stale one only makes it stop early). Returns the entries left.
local function trimLog (L, last, now)
  local lk = logKey(L)
  local card = redis.call('ZCARD', lk)
  local removed = 0
  local cap = logCap(L)
  if card > cap then
    redis.call('ZREMRANGEBYRANK', lk, 0, card - cap - 1)
    removed, card = card - cap, cap
  end
  local score = redis.call('ZSCORE', P .. 'lx', L)
  -- the head is looked at when the index says it may go, or when history's count may have let it go
  if card > 0 and (not score or tonumber(score) <= now or (historyMax > 0 and card > historyMax and isRoom(L))) then
    local size, keep = 1, nil
    while card > 0 and not keep do
      local batch = redis.call('ZRANGE', lk, 0, size - 1)
      local k = 0
      for i = 1, #batch do
        local t = dropTime(L, entryTs(batch[i]), last - card + i, last)
        if t > now then keep = t break end
        k = i
      end
      if k > 0 then
        redis.call('ZREMRANGEBYRANK', lk, 0, k - 1)
        removed, card = removed + k, card - k
      end
      if #batch < size then break end
      size = math.min(size * 4, 64)
    end
    if keep then redis.call('ZADD', P .. 'lx', num(keep), L) end
  end
  stat('queued', -removed)
  if card == 0 then
    redis.call('ZREM', P .. 'lx', L)
    if isRoom(L) and redis.call('EXISTS', P .. 'mb:' .. L) == 0 then deleteLog(L) end
  end
  return card
end
-- Appends an entry (g, ts, json) to log L, whose last was last; trims; sets the backstop TTL.
local function appendLog (L, last, g, ts, json, now)
  local lk = logKey(L)
  redis.call('ZADD', lk, num(g), num(ts) .. '|' .. json)
  local key, field = lastRef(L)
  redis.call('HINCRBY', key, field, 1)
  last = last + 1
  stat('queued', 1)
  redis.call('ZADD', P .. 'lx', 'NX', num(dropTime(L, ts, last, last)), L)
  trimLog(L, last, now)
  local ttl = dropTime(L, ts, last, last) - now + gcMargin
  if ttl < gcMargin then ttl = gcMargin end
  redis.call('PEXPIRE', lk, num(ttl))
  return last
end
`)
