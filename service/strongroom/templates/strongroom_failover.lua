-- Strongroom's failover helper for HAProxy (loaded by haproxy.cfg.j2 with lua-load).
--
-- Two parts, both idle while the write backend has a server up (the steady state):
--
-- * A probe task per server of the write backend: while no server of that
--   backend is up, it asks its node's /v1/sys/health every
--   STRONGROOM_FAILOVER_PROBE_MS and, on a 200 (the active node alone answers
--   200), forces the server's check up.  The regular checks run at their
--   normal pace and take over from there (and take the server out again if
--   the 200 was a fluke).  So the standbys, which are always down in the write
--   backend, are not checked many times a second all the time, only during
--   the half second a failover lasts.
-- * The http-request action strongroom_wait_for_active <backend> <hold_ms>:
--   a write that arrives while the backend has no server waits (without
--   having been sent anywhere) until one is up, at most hold_ms, then goes on
--   (to a 503 if still none).  Only a request not yet sent is held: nothing is
--   replayed.
--
-- Configuration comes from the environment (setenv in haproxy.cfg's global
-- section): STRONGROOM_FAILOVER_BACKEND, STRONGROOM_FAILOVER_PROBE_MS,
-- STRONGROOM_FAILOVER_CHECK_URI, STRONGROOM_FAILOVER_SCHEME.
-- https://docs.haproxy.org/2.6/lua-api/index.html

local backend_name = os.getenv("STRONGROOM_FAILOVER_BACKEND") or "strongroom_write"
local probe_ms = tonumber(os.getenv("STRONGROOM_FAILOVER_PROBE_MS") or "25")
local check_uri = os.getenv("STRONGROOM_FAILOVER_CHECK_URI") or "/v1/sys/health"
local scheme = os.getenv("STRONGROOM_FAILOVER_SCHEME") or "http"
-- A probe of a hung node gives up soon and tries again (each node has its own probe task).
local probe_timeout_ms = 250

-- Whether the write backend has no server up, as of the monitor's last look (every probe_ms).
-- One Lua state serves every HAProxy thread, so the probe tasks see the monitor's value.
local empty = false

local function monitor(backend)
    while true do
        -- "act": servers up in the backend (what nbsrv counts); one cheap stats call per round.
        empty = tonumber(backend:get_stats()["act"]) == 0
        core.msleep(probe_ms)
    end
end

local function probe(server)
    local client = core.httpclient()
    while true do
        if empty then
            local ok, answer = pcall(function()
                return client:get({
                    url = scheme .. "://" .. server:get_addr() .. check_uri,
                    headers = { ["host"] = { "strongroom-haproxy" } },
                    timeout = probe_timeout_ms,
                })
            end)
            if ok and answer ~= nil and answer.status == 200 then
                server:check_force_up()
                empty = false
            end
        end
        core.msleep(probe_ms)
    end
end

core.register_init(function()
    local backend = core.backends[backend_name]
    if backend == nil then
        core.Alert("strongroom_failover.lua: no backend " .. backend_name)
        return
    end
    core.register_task(function()
        monitor(backend)
    end)
    for _, server in pairs(backend.servers) do
        core.register_task(function()
            probe(server)
        end)
    end
end)

core.register_action("strongroom_wait_for_active", { "http-req" }, function(txn, name, hold_ms)
    local now = core.now()
    local deadline = now.sec * 1000 + now.usec / 1000 + tonumber(hold_ms)
    while txn.f:nbsrv(name) == 0 do
        now = core.now()
        if now.sec * 1000 + now.usec / 1000 >= deadline then
            return
        end
        core.msleep(5)
    end
end, 2)
