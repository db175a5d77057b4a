/**
 * Lua library of the Redis store: a session's read (docs/DESIGN.md, "A read, step by step"): acknowledge up to
 * the cursor, drop what was trimmed, expired or overflowed (counting `missed`), and collect what
 * follows, merging the session's logs by `g`. It loops over the session's own memberships (at
 * most maxRoomsPerSession + 3, plus the few that linger after a leave), never over recipients.
 */
import { lib } from './lua.js'
import { LOGS } from './lua-logs.js'
import { SESSIONS } from './lua-sessions.js'

export const READ = lib('read', { messageTtl: 'number', maxMailbox: 'number' }, [LOGS, SESSIONS], `
-- The next entry of membership m after what it has taken (raw entry and g), or nil at its end.
-- Entries are fetched from the log in small, growing chunks.
local function peek (m)
  if m.pos > m.e then return nil end
  if m.bi > #m.buf then
    local r = m.pos - m.trimmed - 1
    local n = math.min(m.e - m.pos + 1, m.chunk)
    m.buf = redis.call('ZRANGE', m.lk, r, r + n - 1, 'WITHSCORES')
    m.bi = 1
    m.chunk = math.min(m.chunk * 4, 128)
    if #m.buf == 0 then m.pos = m.e + 1 return nil end
  end
  return m.buf[m.bi], tonumber(m.buf[m.bi + 1])
end
local function take (m)
  m.bi = m.bi + 2
  m.pos = m.pos + 1
end
-- Moves m's acknowledged position to a (dropping what lies before it, missed when undelivered).
local function dropTo (m, a)
  local missed = 0
  if a > m.dlv then
    missed = a - m.dlv
    m.dlv = a
  end
  m.ack = a
  m.pos, m.buf, m.bi = a + 1, {}, 1
  return missed
end
-- Settles membership m, whose log's last is last (nil: the log is gone), at cursor c:
-- acknowledges delivered entries up to c, drops what was trimmed from the log or expired at
-- its head. Returns the missed count.
local function settle (m, last, c, now)
  local gone = not last
  if gone then
    -- only after a backstop TTL for a current membership: nothing is left of the log
    if m.til >= 0 then last = m.til else last = ensureLog(m.L) m.ack, m.dlv = last, last end
  end
  m.e = last
  if m.til >= 0 and m.til < last then m.e = m.til end
  if m.ack >= m.e then return 0 end
  if gone then m.trimmed = last else m.trimmed = last - redis.call('ZCARD', m.lk) end
  m.pos, m.buf, m.bi, m.chunk = m.ack + 1, {}, 1, 1
  if m.ack < m.dlv then
    local a = m.ack
    if m.trimmed > a then a = math.min(m.trimmed, m.dlv) end
    if a < m.dlv then
      local p = m.trimmed + redis.call('ZCOUNT', m.lk, '-inf', num(c))
      if p > a then a = math.min(p, m.dlv) end
    end
    if a > m.ack then dropTo(m, a) end
  end
  local missed = 0
  if m.trimmed > m.ack then missed = dropTo(m, math.min(m.trimmed, m.e)) end
  while true do
    local e = peek(m)
    if not e or entryTs(e) + messageTtl > now then break end
    take(m)
    m.ack = m.pos - 1
    if m.ack > m.dlv then
      missed = missed + 1
      m.dlv = m.ack
    end
  end
  return missed
end
-- The D oldest pending entries across the memberships in act go (overflow). Returns missed.
local function overflow (act, D)
  if #act == 1 then return dropTo(act[1], act[1].ack + D) end
  -- the smallest x such that D pending entries have g <= x (g is unique across logs)
  local count = function (x)
    local n = 0
    for _, m in ipairs(act) do
      local p = math.min(m.e, m.trimmed + redis.call('ZCOUNT', m.lk, '-inf', num(x)))
      if p > m.ack then n = n + p - m.ack end
    end
    return n
  end
  local lo = math.huge
  for _, m in ipairs(act) do
    local _, g = peek(m)
    if g and g < lo then lo = g end
  end
  lo = lo - 1
  local hi = tonumber(redis.call('GET', P .. 'g') or '0')
  while hi - lo > 1 do
    local mid = math.floor((lo + hi) / 2)
    if count(mid) >= D then hi = mid else lo = mid end
  end
  local missed = 0
  for _, m in ipairs(act) do
    local p = math.min(m.e, m.trimmed + redis.call('ZCOUNT', m.lk, '-inf', num(hi)))
    if p > m.ack then missed = missed + dropTo(m, p) end
  end
  return missed
end
-- Reads session id (its hash parsed as s) after cursor c (nil: what was last issued): up to
-- limit messages and maxBytes bytes of them (the first always goes); limit 0 only
-- acknowledges, and keeps what it finds missed for the next read. Writes the session back.
-- Returns nil for a cursor ahead of anything issued, else { messages, cursor, missed }.
local function readMailbox (id, s, c, limit, maxBytes, now)
  local sk = sessionKey(id)
  local issued = tonumber(s.is)
  if c == nil then c = issued end
  if c > issued then return nil end
  local missed, pending, act = 0, 0, {}
  -- the counts of the session's shared logs, in one call
  local shared, lasts = {}, {}
  for _, m in ipairs(s.ms) do
    if not isInbox(m.L) and not isCopy(m.L) then shared[#shared + 1] = m.L end
  end
  if #shared > 0 then
    local r = redis.call('HMGET', P .. 'last', unpack(shared))
    for i = 1, #shared do lasts[shared[i]] = tonumber(r[i]) end
  end
  for _, m in ipairs(s.ms) do
    m.lk = logKey(m.L)
    m.a0, m.d0 = m.ack, m.dlv
    local last
    if isCopy(m.L) then last = m.til
    elseif isInbox(m.L) then last = tonumber(s.n)
    else last = lasts[m.L] end
    missed = missed + settle(m, last, c, now)
    if m.ack < m.e then
      act[#act + 1] = m
      pending = pending + m.e - m.ack
    end
  end
  local out, cursor = {}, c
  if limit > 0 then
    if pending > maxMailbox then missed = missed + overflow(act, pending - maxMailbox) end
    local bytes, delivered = 0, 0
    while #out < limit do
      local best, bestE, bestG = nil, nil, math.huge
      for _, m in ipairs(act) do
        local e, g = peek(m)
        if e and g < bestG then best, bestE, bestG = m, e, g end
      end
      if not best then break end
      local m = best
      if entryTs(bestE) + messageTtl <= now then
        -- expired behind a live entry: never delivered now
        if m.pos > m.dlv then
          missed = missed + 1
          m.dlv = m.pos
        end
        if m.ack == m.pos - 1 then m.ack = m.pos end
        take(m)
      else
        local json = entryJson(bestE)
        if #out > 0 and bytes + #json > maxBytes then break end
        out[#out + 1] = json
        bytes = bytes + #json
        if m.pos > m.dlv then
          delivered = delivered + 1
          m.dlv = m.pos
        end
        cursor = bestG
        take(m)
      end
    end
    stat('delivered', delivered)
  end
  stat('dropped', missed)
  -- the session's changes, in one HSET
  local changes = {}
  if cursor > issued then
    changes[1], changes[2] = 'is', num(cursor)
    s.is = num(cursor)
  end
  for _, m in ipairs(s.ms) do
    if m.til >= 0 and m.ack >= m.til then
      redis.call('HDEL', sk, m.f)
      if isCopy(m.L) then redis.call('DEL', m.lk) end
    else
      if m.ack ~= m.a0 or m.dlv ~= m.d0 then
        changes[#changes + 1] = m.f
        changes[#changes + 1] = encodeMembership(m)
      end
      -- a session's own inbox, and its copies, have one reader: what it acknowledged is freed at once
      if m.trimmed and m.ack > m.trimmed and (isCopy(m.L) or isInbox(m.L)) then
        local n = m.ack - m.trimmed
        redis.call('ZREMRANGEBYRANK', m.lk, 0, n - 1)
        if isInbox(m.L) then stat('queued', -n) end
      end
    end
  end
  local pm = tonumber(s.pm)
  local reported = 0
  if limit > 0 then
    reported = pm + missed
    if pm ~= 0 then
      changes[#changes + 1] = 'pm'
      changes[#changes + 1] = 0
    end
  elseif missed > 0 then
    changes[#changes + 1] = 'pm'
    changes[#changes + 1] = num(pm + missed)
  end
  if #changes > 0 then redis.call('HSET', sk, unpack(changes)) end
  return { out, cursor, reported }
end
`)
