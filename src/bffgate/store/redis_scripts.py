"""The session store's Lua scripts (standalone and Sentinel; ``LOAD`` and ``REPLACE`` on a
Cluster too: one key each). A record is ``<absolute_expiry_ms>|<generation>|<payload>``
(bffgate.store.redis)."""

LOAD = """
local v = redis.call('GET', KEYS[1])
if not v then return false end
local abs, gen = string.match(v, '^(%d+)|(%d+)|')
if gen == '0' then return false end
abs = tonumber(abs)
local ttl = math.min(tonumber(ARGV[2]), abs - tonumber(ARGV[1]))
if ttl <= 0 then redis.call('DEL', KEYS[1]) return false end
redis.call('PEXPIRE', KEYS[1], ttl)
return v
"""
REPLACE = """
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local abs, gen = string.match(v, '^(%d+)|(%d+)|')
if gen == '0' then return 0 end
if gen ~= ARGV[1] then return -1 end
local ttl = math.min(tonumber(ARGV[4]), tonumber(abs) - tonumber(ARGV[3]))
if ttl <= 0 then redis.call('DEL', KEYS[1]) return 0 end
local next = tonumber(gen) + 1
redis.call('SET', KEYS[1], abs .. '|' .. next .. '|' .. ARGV[2], 'PX', ttl)
redis.call('PUBLISH', ARGV[5], ARGV[6] .. ' ' .. next)
return 1
"""

# A new session's record and its index entries in one step (standalone and Sentinel; a
# Cluster spreads these keys over slots). The record is written last: a refused write
# leaves at worst index entries that name no record (readers prune them), never a record
# its indexes miss.
CREATE = """
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[4], 'GT')
redis.call('EXPIRE', KEYS[2], ARGV[4], 'NX')
if KEYS[3] then
  redis.call('SADD', KEYS[3], ARGV[3])
  redis.call('EXPIRE', KEYS[3], ARGV[4])
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
