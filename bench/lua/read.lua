-- wrk script: KV reads (GET) of keys written beforehand.
--
-- Settings come from the environment (bench/kv.py sets them):
--   BENCH_PATH_PREFIX  path before the key number, e.g. /v1/secret/data/bench/k
--   BENCH_KEYS         number of keys read in turn (default 64)
--   BENCH_TOKEN        sent as X-Vault-Token when set
-- Requests are formatted once at start-up so the Lua cost per request is a table lookup.

local prefix = os.getenv("BENCH_PATH_PREFIX") or "/v1/secret/data/bench/k"
local keys = tonumber(os.getenv("BENCH_KEYS") or "64")
local token = os.getenv("BENCH_TOKEN") or ""

-- wrk 4.1 (Debian) does not add Host to requests made with wrk.format; Go servers refuse them.
local host = wrk.port and (wrk.host .. ":" .. wrk.port) or wrk.host
local headers = { ["Host"] = host }
if token ~= "" then headers["X-Vault-Token"] = token end

local requests = {}
for i = 0, keys - 1 do
   requests[i] = wrk.format("GET", prefix .. i, headers)
end

local n = 0
request = function()
   local r = requests[n % keys]
   n = n + 1
   return r
end
