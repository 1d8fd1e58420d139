-- Marks the positions of fan-outs' endpoint sets finished (fanOutProgress.ts): one round trip for
-- every mark of one turn of a worker's event loop (one message's, on a Redis Cluster).
-- KEYS: one progress bitmap per message. ARGV, for each key in order: how many positions, then
-- the positions. Returns one answer per key: the number of positions set, or {'error', message}.
-- SETBIT keeps the expiry the bitmap was made with (fanOutProgress.ts `finished`).

local function mark(key, first, last)
  for i = first, last do redis.call('SETBIT', key, ARGV[i], 1) end
  return last - first + 1
end

-- Each key in its own protected call: one that fails (a key of the wrong type) answers
-- {'error', message} and leaves the others' answers standing.
local results = {}
local at = 1
for i = 1, #KEYS do
  local count = tonumber(ARGV[at])
  local ok, result = pcall(mark, KEYS[i], at + 1, at + count)
  if ok then
    results[i] = result
  else
    results[i] = {'error', type(result) == 'table' and tostring(result.err) or tostring(result)}
  end
  at = at + count + 1
end
return results
