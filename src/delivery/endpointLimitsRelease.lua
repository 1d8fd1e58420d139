-- Release of one delivery's place by the per-endpoint limits (endpointLimits.ts), with its verdict:
-- atomic, one round trip; a success on a healthy endpoint writes nothing.
-- KEYS: endpoint state hash, in-flight sorted set, set of postponed deliveries.
-- ARGV: token, verdict, now, failureThreshold, cooldownMs, maxCooldownMs, keyTtlMs, maxInFlight,
-- attemptMs (how long the attempt took), maxPromoted.
-- Returns {transition, ...}: 'opened', 'reopened', 'none', or 'closed' (from open or half-open)
-- followed by the ids of deliveries the open circuit postponed (the rest keep their timers).

redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] == 'none' then return {'none'} end
local threshold = tonumber(ARGV[4])
local maxInFlight = tonumber(ARGV[8])
local state, limit, failures = unpack(redis.call('HMGET', KEYS[1], 'state', 'limit', 'failures'))
state = state or 'closed'
limit = tonumber(limit or '1')
-- Only a success says how fast the endpoint drains (endpointLimitsAdmit.lua spaces postponed
-- deliveries by it): a timeout says it hangs, and its deliveries should come back soon to meet the
-- circuit, which hands them back as soon as the endpoint recovers, rather than a timeout apart each.
if ARGV[2] == 'succeeded' then redis.call('HSET', KEYS[1], 'latencyMs', ARGV[9]) end
redis.call('PEXPIRE', KEYS[1], ARGV[7])
if ARGV[2] == 'succeeded' then
  -- A healthy endpoint at its full limit has nothing else to change: the common path.
  if state == 'closed' and (failures == false or failures == '0') and (maxInFlight == 0 or limit >= maxInFlight) then
    return {'none'}
  end
  redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'limit', math.min(limit * 2, math.max(maxInFlight, 1)))
  redis.call('HDEL', KEYS[1], 'retryAt', 'probe', 'probeUntil', 'opens')
  if state == 'closed' then return {'none'} end
  local postponed = redis.call('SPOP', KEYS[3], tonumber(ARGV[10]))
  redis.call('DEL', KEYS[3])
  table.insert(postponed, 1, 'closed')
  return postponed
end
local now = tonumber(ARGV[3])
failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HSET', KEYS[1], 'limit', math.max(1, math.floor(limit / 2)))
local result = 'none'
if threshold > 0 then
  if state == 'half-open' and redis.call('HGET', KEYS[1], 'probe') == ARGV[1] then
    local opens = redis.call('HINCRBY', KEYS[1], 'opens', 1)
    local cooldown = math.min(tonumber(ARGV[5]) * 2 ^ (opens - 1), tonumber(ARGV[6]))
    redis.call('HSET', KEYS[1], 'state', 'open', 'retryAt', now + cooldown)
    redis.call('HDEL', KEYS[1], 'probe', 'probeUntil')
    result = 'reopened'
  elseif state == 'closed' and failures >= threshold then
    redis.call('HSET', KEYS[1], 'state', 'open', 'opens', 1, 'retryAt', now + tonumber(ARGV[5]))
    result = 'opened'
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return {result}
