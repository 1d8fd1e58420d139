-- A fan-out of the owner has finished (ownerQueue.ts): one fewer of its messages in the queue.
-- KEYS: the owner's count of queued fan-outs. Returns what is left; the key goes at zero, so a
-- count never goes below it (a job counted before a restart of Redis, a job of an older worker).
local left = redis.call('DECR', KEYS[1])
if left <= 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
return left
