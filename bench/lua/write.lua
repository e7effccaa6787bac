-- wrk script: KV writes (POST for Vault's API, PUT for raw Consul) with a fixed body.
--
-- Settings come from the environment (bench/kv.py sets them):
--   BENCH_METHOD       POST or PUT (default POST)
--   BENCH_PATH_PREFIX  path before the key number, e.g. /v1/secret/data/bench/k
--   BENCH_KEYS         number of keys written in turn (default 64)
--   BENCH_BODY         request body (Vault: {"data":{"value":"..."}}; Consul: the raw value)
--   BENCH_TOKEN        sent as X-Vault-Token when set
-- Requests are formatted once at start-up so the Lua cost per request is a table lookup.

local method = os.getenv("BENCH_METHOD") or "POST"
local prefix = os.getenv("BENCH_PATH_PREFIX") or "/v1/secret/data/bench/k"
local keys = tonumber(os.getenv("BENCH_KEYS") or "64")
local body = os.getenv("BENCH_BODY") or '{"data":{"value":"x"}}'
local token = os.getenv("BENCH_TOKEN") or ""

-- wrk 4.1 (Debian) does not add Host to requests made with wrk.format; Go servers refuse them.
local host = wrk.port and (wrk.host .. ":" .. wrk.port) or wrk.host
local headers = { ["Host"] = host, ["Content-Type"] = "application/json" }
if token ~= "" then headers["X-Vault-Token"] = token end

local requests = {}
for i = 0, keys - 1 do
   requests[i] = wrk.format(method, prefix .. i, headers, body)
end

local n = 0
request = function()
   local r = requests[n % keys]
   n = n + 1
   return r
end
