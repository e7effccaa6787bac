-- wrk script: one transit request, sent again and again (bench/transit.py).
--
-- Settings come from the environment:
--   BENCH_PATH   e.g. /v1/transit/encrypt/bench
--   BENCH_BODY   the JSON body (a plaintext, a ciphertext, or a batch_input of 100)
--   BENCH_TOKEN  sent as X-Vault-Token when set
-- The request is formatted once at start-up.

local path = os.getenv("BENCH_PATH") or "/v1/transit/encrypt/bench"
local body = os.getenv("BENCH_BODY") or "{}"
local token = os.getenv("BENCH_TOKEN") or ""

-- wrk 4.1 (Debian) does not add Host to requests made with wrk.format; Go servers refuse them.
local host = wrk.port and (wrk.host .. ":" .. wrk.port) or wrk.host
local headers = { ["Host"] = host, ["Content-Type"] = "application/json" }
if token ~= "" then headers["X-Vault-Token"] = token end

local formatted = wrk.format("POST", path, headers, body)

request = function()
   return formatted
end
