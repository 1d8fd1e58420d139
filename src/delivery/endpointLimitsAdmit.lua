-- Admission of one delivery by the per-endpoint limits (endpointLimits.ts): atomic, one round trip.
-- KEYS (one endpoint's, in one hash slot): endpoint state hash, in-flight sorted set (member: token,
-- score: lease end), set of the deliveries an open circuit postponed.
-- ARGV: now, token, leaseMs, maxInFlight, breakerOn, jobId (or ''), keyTtlMs, ratePerSecond (0:
-- none), maxWaitMs, minWaitMs, unknownSpacingMs.
-- Returns {'admitted', isProbe}, {'open' | 'half-open', untilMs}, or {'busy' | 'rate', waitMs,
-- spreadMs}: come back after waitMs plus up to spreadMs.

-- Most postponed deliveries remembered per endpoint; beyond, they come back on their timers.
local maxPostponedTracked = 100000
local now = tonumber(ARGV[1])
local leaseUntil = now + tonumber(ARGV[3])
local probe = false
local state, limit, latency, queueUntil, rateAt =
  unpack(redis.call('HMGET', KEYS[1], 'state', 'limit', 'latencyMs', 'queueUntil', 'rateAt'))
if ARGV[5] == '1' and (state == 'open' or state == 'half-open') then
  local field = state == 'open' and 'retryAt' or 'probeUntil'
  local untilMs = tonumber(redis.call('HGET', KEYS[1], field) or '0')
  if now < untilMs then
    if ARGV[6] ~= '' and redis.call('SCARD', KEYS[3]) < maxPostponedTracked then
      redis.call('SADD', KEYS[3], ARGV[6])
      redis.call('PEXPIRE', KEYS[3], ARGV[7])
    end
    return {state, untilMs}
  end
  probe = true
end

local maxInFlight = tonumber(ARGV[4])
local rate = tonumber(ARGV[8])
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
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= cap then refused = 'busy' end
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
    spacing = latency and tonumber(latency) / math.max(cap, 1) or tonumber(ARGV[11])
  end
  spacing = math.max(spacing, intervalMs)
  local minWait = tonumber(ARGV[10])
  local maxWait = tonumber(ARGV[9])
  local place = math.max(tonumber(queueUntil or '0') + spacing, now + math.max(spacing, minWait), rateDue)
  if place - now > maxWait then
    return {refused, maxWait, maxWait / 2}
  end
  redis.call('HSET', KEYS[1], 'queueUntil', place)
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  return {refused, math.floor(place - now), math.floor(spacing / 2)}
end

if maxInFlight > 0 then
  redis.call('ZADD', KEYS[2], leaseUntil, ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
if rate > 0 then
  redis.call('HSET', KEYS[1], 'rateAt', math.max(rateDue, now) + intervalMs)
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
end
if probe then
  redis.call('HSET', KEYS[1], 'state', 'half-open', 'probe', ARGV[2], 'probeUntil', leaseUntil)
  return {'admitted', 1}
end
return {'admitted', 0}
