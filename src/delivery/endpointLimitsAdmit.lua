-- Admission of deliveries by the per-endpoint limits (endpointLimits.ts): atomic, one round trip for
-- every delivery asked about in one turn of a worker's event loop (one, on a Redis Cluster).
-- KEYS, three per delivery (one endpoint's, in one hash slot): endpoint state hash, in-flight
-- sorted set (member: token, score: lease end), set of the deliveries an open circuit postponed.
-- ARGV, eleven per delivery, in the same order: now, token, leaseMs, maxInFlight, breakerOn, jobId
-- (or ''), keyTtlMs, ratePerSecond (0: none), maxWaitMs, minWaitMs, unknownSpacingMs.
-- Returns one answer per delivery: {'admitted', isProbe, healthy}, {'open' | 'half-open',
-- untilMs}, or {'busy' | 'rate', waitMs, spreadMs}: come back after waitMs plus up to spreadMs.
-- `healthy` (1 or 0): the circuit is closed with no failure counted, the in-flight limit is at its
-- top and there is no rate limit, so a success would change nothing here and the worker may keep
-- the place for the endpoint's next delivery (endpointLimits.ts).
-- The deliveries are taken in order, so two to one endpoint see each other's effect.

local function admit(stateKey, inFlightKey, postponedKey, argv)
  -- Most postponed deliveries remembered per endpoint; beyond, they come back on their timers.
  local maxPostponedTracked = 100000
  local now = tonumber(argv[1])
  local leaseUntil = now + tonumber(argv[3])
  local probe = false
  local state, limit, latency, queueUntil, rateAt, failures = unpack(redis.call('HMGET', stateKey,
    'state', 'limit', 'latencyMs', 'queueUntil', 'rateAt', 'failures'))
  if argv[5] == '1' and (state == 'open' or state == 'half-open') then
    local field = state == 'open' and 'retryAt' or 'probeUntil'
    local untilMs = tonumber(redis.call('HGET', stateKey, field) or '0')
    if now < untilMs then
      if argv[6] ~= '' and redis.call('SCARD', postponedKey) < maxPostponedTracked then
        redis.call('SADD', postponedKey, argv[6])
        redis.call('PEXPIRE', postponedKey, argv[7])
      end
      return {state, untilMs}
    end
    probe = true
  end

  local maxInFlight = tonumber(argv[4])
  local rate = tonumber(argv[8])
  local cap = math.min(tonumber(limit or '1'), maxInFlight)
  -- Requests-per-second limit, as a generic cell rate algorithm: `rateAt` is when the next request
  -- is due; one may go out up to half an interval early, so deliveries coming back at their
  -- (jittered) places are not refused for a few milliseconds, while any one second still holds at
  -- most rate + 1 requests.
  local intervalMs = rate > 0 and 1000 / rate or 0
  local rateDue = tonumber(rateAt or '0')
  local refused = nil
  if rate > 0 and now < rateDue - intervalMs / 2 then
    refused = 'rate'
  elseif maxInFlight > 0 then
    redis.call('ZREMRANGEBYSCORE', inFlightKey, '-inf', now)
    if redis.call('ZCARD', inFlightKey) >= cap then refused = 'busy' end
  end

  if refused then
    -- A refused delivery gets the next free place in the endpoint's queue of postponed deliveries:
    -- one expected drain interval (an attempt's duration over the deliveries in flight, or the rate
    -- interval, whichever is longer) after the last place handed out. So a backlog of N comes back
    -- about once each, spread over its drain time, instead of every delivery asking again every
    -- attempt's duration. Places further than maxWaitMs ahead are not handed out: those deliveries
    -- come back within maxWaitMs and ask again.
    local spacing = 0
    if maxInFlight > 0 then
      spacing = latency and tonumber(latency) / math.max(cap, 1) or tonumber(argv[11])
    end
    spacing = math.max(spacing, intervalMs)
    local minWait = tonumber(argv[10])
    local maxWait = tonumber(argv[9])
    local place = math.max(tonumber(queueUntil or '0') + spacing, now + math.max(spacing, minWait), rateDue)
    if place - now > maxWait then
      return {refused, maxWait, maxWait / 2}
    end
    redis.call('HSET', stateKey, 'queueUntil', place)
    redis.call('PEXPIRE', stateKey, argv[7])
    return {refused, math.floor(place - now), math.floor(spacing / 2)}
  end

  if maxInFlight > 0 then
    redis.call('ZADD', inFlightKey, leaseUntil, argv[2])
    redis.call('PEXPIRE', inFlightKey, argv[3])
  end
  if rate > 0 then
    redis.call('HSET', stateKey, 'rateAt', math.max(rateDue, now) + intervalMs)
    redis.call('PEXPIRE', stateKey, argv[7])
  end
  if probe then
    redis.call('HSET', stateKey, 'state', 'half-open', 'probe', argv[2], 'probeUntil', leaseUntil)
    return {'admitted', 1, 0}
  end
  local healthy = (state == false or state == 'closed') and (failures == false or failures == '0')
    and rate == 0 and (maxInFlight == 0 or tonumber(limit or '1') >= maxInFlight)
  return {'admitted', 0, healthy and 1 or 0}
end

-- Each delivery in its own protected call: one that fails (a key of the wrong type) answers
-- {'error', message} and leaves the others' answers standing.
local results = {}
for i = 1, #KEYS / 3 do
  local argv = {unpack(ARGV, (i - 1) * 11 + 1, i * 11)}
  local ok, result = pcall(admit, KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i], argv)
  if ok then
    results[i] = result
  else
    results[i] = {'error', type(result) == 'table' and tostring(result.err) or tostring(result)}
  end
end
return results
