-- Admission of one delivery by the per-endpoint limits (endpointLimits.ts): atomic, one round trip.
-- KEYS: endpoint state hash, in-flight sorted set (member: token, score: lease end), set of the
-- deliveries an open circuit postponed.
-- ARGV: now, token, leaseMs, maxInFlight, breakerOn, jobId (or ''), keyTtlMs.
-- Returns {'admitted', isProbe}, {'open' | 'half-open', untilMs} or {'busy', lastAttemptMs or -1}.

-- Most postponed deliveries remembered per endpoint; beyond, they come back on their timers.
local maxPostponedTracked = 100000
local now = tonumber(ARGV[1])
local leaseUntil = now + tonumber(ARGV[3])
local probe = false
local state, limit, latency = unpack(redis.call('HMGET', KEYS[1], 'state', 'limit', 'latencyMs'))
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
if maxInFlight > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= math.min(tonumber(limit or '1'), maxInFlight) then
    return {'busy', tonumber(latency or '-1')}
  end
  redis.call('ZADD', KEYS[2], leaseUntil, ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
if probe then
  redis.call('HSET', KEYS[1], 'state', 'half-open', 'probe', ARGV[2], 'probeUntil', leaseUntil)
  return {'admitted', 1}
end
return {'admitted', 0}
