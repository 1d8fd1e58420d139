-- Release of deliveries' places by the per-endpoint limits (endpointLimits.ts), each with its
-- verdict ('succeeded', 'failed', 'none', or 'kept': a place a worker kept after successes):
-- atomic, one round trip for every release of one turn of a worker's event loop (one, on a Redis
-- Cluster); a success on a healthy endpoint writes nothing.
-- KEYS, three per delivery: endpoint state hash, in-flight sorted set, set of postponed deliveries.
-- ARGV, ten per delivery, in the same order: token, verdict, now, failureThreshold, cooldownMs,
-- maxCooldownMs, keyTtlMs, maxInFlight, attemptMs (how long the attempt took), maxPromoted.
-- Returns one answer per delivery, {transition, ...}: 'opened', 'reopened', 'none', or 'closed'
-- (from open or half-open) followed by the ids of deliveries the open circuit postponed (the rest
-- keep their timers).

local function release(stateKey, inFlightKey, postponedKey, argv)
  redis.call('ZREM', inFlightKey, argv[1])
  if argv[2] == 'none' then return {'none'} end
  if argv[2] == 'kept' then
    -- A place a worker kept after successes, given back: its last attempt's duration updates the
    -- drain estimate, and nothing else changes (its successes were counted when it was kept).
    redis.call('HSET', stateKey, 'latencyMs', argv[9])
    redis.call('PEXPIRE', stateKey, argv[7])
    return {'none'}
  end
  local threshold = tonumber(argv[4])
  local maxInFlight = tonumber(argv[8])
  local state, limit, failures = unpack(redis.call('HMGET', stateKey, 'state', 'limit', 'failures'))
  state = state or 'closed'
  limit = tonumber(limit or '1')
  -- Only a success says how fast the endpoint drains (endpointLimitsAdmit.lua spaces postponed
  -- deliveries by it): a timeout says it hangs, and its deliveries should come back soon to meet the
  -- circuit, which hands them back as soon as the endpoint recovers, rather than a timeout apart each.
  if argv[2] == 'succeeded' then redis.call('HSET', stateKey, 'latencyMs', argv[9]) end
  redis.call('PEXPIRE', stateKey, argv[7])
  if argv[2] == 'succeeded' then
    -- A healthy endpoint at its full limit has nothing else to change: the common path.
    if state == 'closed' and (failures == false or failures == '0') and (maxInFlight == 0 or limit >= maxInFlight) then
      return {'none'}
    end
    redis.call('HSET', stateKey, 'state', 'closed', 'failures', 0, 'limit', math.min(limit * 2, math.max(maxInFlight, 1)))
    redis.call('HDEL', stateKey, 'retryAt', 'probe', 'probeUntil', 'opens')
    if state == 'closed' then return {'none'} end
    local postponed = redis.call('SPOP', postponedKey, tonumber(argv[10]))
    redis.call('DEL', postponedKey)
    table.insert(postponed, 1, 'closed')
    return postponed
  end
  local now = tonumber(argv[3])
  failures = redis.call('HINCRBY', stateKey, 'failures', 1)
  redis.call('HSET', stateKey, 'limit', math.max(1, math.floor(limit / 2)))
  local result = 'none'
  if threshold > 0 then
    if state == 'half-open' and redis.call('HGET', stateKey, 'probe') == argv[1] then
      local opens = redis.call('HINCRBY', stateKey, 'opens', 1)
      local cooldown = math.min(tonumber(argv[5]) * 2 ^ (opens - 1), tonumber(argv[6]))
      redis.call('HSET', stateKey, 'state', 'open', 'retryAt', now + cooldown)
      redis.call('HDEL', stateKey, 'probe', 'probeUntil')
      result = 'reopened'
    elseif state == 'closed' and failures >= threshold then
      redis.call('HSET', stateKey, 'state', 'open', 'opens', 1, 'retryAt', now + tonumber(argv[5]))
      result = 'opened'
    end
  end
  redis.call('PEXPIRE', stateKey, argv[7])
  return {result}
end

-- Each delivery in its own protected call: one that fails (a key of the wrong type) answers
-- {'error', message} and leaves the others' answers standing.
local results = {}
for i = 1, #KEYS / 3 do
  local argv = {unpack(ARGV, (i - 1) * 10 + 1, i * 10)}
  local ok, result = pcall(release, KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i], argv)
  if ok then
    results[i] = result
  else
    results[i] = {'error', type(result) == 'table' and tostring(result.err) or tostring(result)}
  end
end
return results
