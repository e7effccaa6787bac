-- wrk script: one login request, the same body every time (bench/login.py sets it).
--
--   BENCH_PATH  the login path, e.g. /v1/auth/userpass/login/bench
--   BENCH_BODY  the JSON body ({"password": ...} or {"role_id": ..., "secret_id": ...})

local path = os.getenv("BENCH_PATH") or "/v1/auth/userpass/login/bench"
local body = os.getenv("BENCH_BODY") or '{"password":"x"}'

-- wrk 4.1 (Debian) does not add Host to requests made with wrk.format; Go servers refuse them.
local host = wrk.port and (wrk.host .. ":" .. wrk.port) or wrk.host
local req = wrk.format("POST", path, { ["Host"] = host, ["Content-Type"] = "application/json" }, body)

request = function()
   return req
end
