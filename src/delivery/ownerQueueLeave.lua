-- Fan-outs of the owner have finished (ownerQueue.ts): that many fewer of its messages in the queue.
-- KEYS: the owner's count of queued fan-outs. ARGV: how many finished (a worker sends a turn's at
-- once). Returns what is left; the key goes at zero, so a count never goes below it (a job counted
-- before a restart of Redis, a job of an older worker).
local left = redis.call('DECRBY', KEYS[1], ARGV[1])
if left <= 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
return left
