//! The Lua scripts cluster mode runs in Redis. Each is atomic there, which
//! is what makes `seq`, `cid` deduplication and nickname claims hold across
//! processes; each touches the keys of one hash tag only (see `keys`), so
//! they run on a Redis Cluster too.

/// Appends an entry to a room (every key is the room's): a message, or an
/// edit or delete of an earlier one, checked here, where the room's
/// entries are, as `log::check_change` checks them in the other stores.
///
/// KEYS: seq, log, epoch, cid key (any of the room's keys when there is no
/// cid), changed (hash `seq` → current body of a changed message), changes
/// (its `seq`s, scored by `seq`).
/// ARGV: body without its opening `{` (`"from":…,"text":…,"ts":…`),
/// a new epoch (used if the room has none), stream length to keep,
/// cid TTL in seconds (`""`: no cid), ts, channel, change kind (`""`,
/// `edit`, `delete`), the changed message's `seq`, the author (`""`:
/// unknown), `1` when the author may delete anyone's message, the edit
/// window in ms.
///
/// Returns `{1, seq, epoch}` for a new entry, `{0, "seq:ts", epoch}` when
/// the `(session, cid)` pair was already stored, or `{-1, why, epoch}`
/// for a refused change (`missing`, `deleted`, `notyours`, `toolate`).
///
/// A changed message's current body goes to `changed`; a deleted one's
/// stream entry is removed (`XDEL`), so its text is nowhere in Redis.
pub(crate) const APPEND: &str = r#"
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[2]
  redis.call('SET', KEYS[3], epoch)
end
if ARGV[4] ~= '' then
  local prev = redis.call('GET', KEYS[4])
  if prev then return {0, prev, epoch} end
end
local target
if ARGV[7] ~= '' then
  local current = redis.call('HGET', KEYS[5], ARGV[8])
  if not current then
    local id = ARGV[8] .. '-0'
    local found = redis.call('XRANGE', KEYS[2], id, id)
    if #found == 1 then
      local fields = found[1][2]
      for i = 1, #fields, 2 do
        if fields[i] == 'm' then current = fields[i + 1] end
      end
    end
  end
  if not current then return {-1, 'missing', epoch} end
  target = cjson.decode(current)
  if target.kind then return {-1, 'missing', epoch} end
  if target.deleted then return {-1, 'deleted', epoch} end
  local mine = ARGV[9] ~= '' and target.author == ARGV[9]
  if ARGV[7] == 'edit' then
    if not mine then return {-1, 'notyours', epoch} end
    if tonumber(ARGV[5]) - target.ts > tonumber(ARGV[11]) then return {-1, 'toolate', epoch} end
  elseif not mine and ARGV[10] ~= '1' then
    return {-1, 'notyours', epoch}
  end
end
local seq = redis.call('INCR', KEYS[1])
local body = '{"epoch":"' .. epoch .. '",' .. ARGV[1]
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], seq .. '-0', 'm', body)
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[4], seq .. ':' .. ARGV[5], 'EX', ARGV[4])
end
if target then
  target.changed = seq
  if ARGV[7] == 'edit' then
    target.text = cjson.decode(body).text
  else
    target.text = ''
    target.deleted = true
    redis.call('XDEL', KEYS[2], ARGV[8] .. '-0')
  end
  redis.call('HSET', KEYS[5], ARGV[8], cjson.encode(target))
  redis.call('ZADD', KEYS[6], ARGV[8], ARGV[8])
  -- What retention trimmed from the stream goes from here too.
  local old = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', '(' .. (seq - tonumber(ARGV[3])))
  for _, gone in ipairs(old) do redis.call('HDEL', KEYS[5], gone) end
  if #old > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', '(' .. (seq - tonumber(ARGV[3]))) end
end
redis.call('PUBLISH', ARGV[6], 'm' .. seq .. '\n' .. body)
return {1, tostring(seq), epoch}
"#;

/// Claims a nickname.
///
/// KEYS: nicks hash, this node's nick set (both `{:global}`). ARGV: the
/// nick's look-alike key, holder (`{node}:{conn}:{session}`), session
/// (`""` when none), `{node}:{conn}:`, now (ms since the Unix epoch), what
/// a node's heartbeat key starts with (the holder's node's heartbeat is in
/// the same slot).
///
/// A holder is a live connection (`{node}:{conn}:{session}`) or, once its
/// connection ended, the session alone until it expires
/// (`~{until}:{session}`). The nick is free when nobody holds it, when the
/// holder is the same connection or the same session (a client resuming
/// elsewhere), when a session's hold expired, or when the holder's node is
/// gone and the holder had no session (a session's nick waits for the
/// node to be reaped, which turns it into a hold). Returns 1 when granted.
pub(crate) const CLAIM: &str = r#"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and cur ~= ARGV[2] then
  local same = string.sub(cur, 1, #ARGV[4]) == ARGV[4]
    or (ARGV[3] ~= '' and string.sub(cur, -(#ARGV[3] + 1)) == (':' .. ARGV[3]))
  if not same then
    if string.sub(cur, 1, 1) == '~' then
      local untilms = tonumber(string.match(cur, '^~(%d+):'))
      if untilms and untilms > tonumber(ARGV[5]) then return 0 end
    else
      local node, session = string.match(cur, '^([^:]*):[^:]*:(.*)$')
      if node and (session ~= '' or redis.call('EXISTS', ARGV[6] .. node) == 1) then
        return 0
      end
    end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"#;

/// Gives a nickname back if the connection still holds it.
///
/// KEYS: nicks hash. ARGV: lower-cased nick, `{node}:{conn}:`.
pub(crate) const RELEASE: &str = r#"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and string.sub(cur, 1, #ARGV[2]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0
"#;

/// Removes the members a stopped node had in one room, publishing each
/// leave as a live node would. Idempotent: a member is removed (and its
/// leave published) once, whoever runs it.
///
/// KEYS: the room's member hash. ARGV: `{node}:`, node id, the room's
/// channel. Returns how many members were removed.
pub(crate) const REAP_ROOM: &str = r#"
local removed = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local field, nick = all[i], all[i + 1]
  if string.sub(field, 1, #ARGV[1]) == ARGV[1] then
    redis.call('HDEL', KEYS[1], field)
    redis.call('PUBLISH', ARGV[3],
      'p' .. cjson.encode({node = ARGV[2], key = field, kind = 'leave', nick = nick}))
    removed = removed + 1
  end
end
return removed
"#;

/// Removes a node that stopped, once its rooms are done
/// ([`REAP_ROOM`]): its nicknames are freed, or held for their sessions
/// until `ARGV[3]`, and its keys go. A node whose heartbeat is back is
/// spared (returns 0).
///
/// KEYS (all `{:global}`): nodes set, nicks hash, node's rooms, node's
/// nicks, node's heartbeat. ARGV: node id, `"force"` to remove a live
/// node (its own shutdown), when sessions' holds end (ms since the Unix
/// epoch). Returns 1 when removed.
pub(crate) const REAP_NODE: &str = r#"
if ARGV[2] ~= 'force' and redis.call('EXISTS', KEYS[5]) == 1 then return 0 end
redis.call('SREM', KEYS[1], ARGV[1])
local prefix = ARGV[1] .. ':'
for _, n in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  local holder = redis.call('HGET', KEYS[2], n)
  if holder and string.sub(holder, 1, #prefix) == prefix then
    local session = string.match(holder, '^[^:]*:[^:]*:(.*)$')
    if session and session ~= '' then
      redis.call('HSET', KEYS[2], n, '~' .. ARGV[3] .. ':' .. session)
    else
      redis.call('HDEL', KEYS[2], n)
    end
  end
end
redis.call('DEL', KEYS[3], KEYS[4], KEYS[5])
return 1
"#;

/// Removes a room's messages older than a cutoff, oldest first (the
/// room's `seq` lives in its own key, so it continues).
///
/// KEYS: log. ARGV: cutoff (ms since the epoch), most entries to look at.
/// Returns how many were removed: the caller goes on while that is ARGV[2].
pub(crate) const EXPIRE: &str = r#"
local cutoff = tonumber(ARGV[1])
local last = nil
local n = 0
for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', ARGV[2])) do
  local ok, m = pcall(cjson.decode, e[2][2])
  if not ok or type(m) ~= 'table' or type(m.ts) ~= 'number' or m.ts >= cutoff then break end
  last = e[1]
  n = n + 1
end
if last then
  local seq = string.match(last, '^(%d+)-')
  redis.call('XTRIM', KEYS[1], 'MINID', seq .. '-1')
end
return n
"#;

/// A connection with a session ended: its nickname is held for the
/// session until it expires, if the connection still holds it.
///
/// KEYS: nicks hash. ARGV: the nick's key, `{node}:{conn}:`,
/// `~{until}:{session}`.
pub(crate) const HOLD: &str = r#"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and string.sub(cur, 1, #ARGV[2]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0
"#;

/// Drops nickname holds of sessions that expired, one slice of the hash.
///
/// KEYS: nicks hash. ARGV: HSCAN cursor, now (ms since the Unix epoch).
/// Returns the next cursor (0 when the pass is done).
pub(crate) const SWEEP_HOLDS: &str = r#"
local r = redis.call('HSCAN', KEYS[1], ARGV[1], 'COUNT', 500)
local now = tonumber(ARGV[2])
local all = r[2]
for i = 1, #all, 2 do
  local untilms = tonumber(string.match(all[i + 1], '^~(%d+):'))
  if untilms and untilms <= now then
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return tonumber(r[1])
"#;
