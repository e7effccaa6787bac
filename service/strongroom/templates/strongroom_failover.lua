-- Strongroom's failover helper for HAProxy (loaded by haproxy.cfg.j2 with lua-load).
--
-- Nothing runs while the write backend has a server up (the steady state).
--
-- * The http-request action strongroom_wait_for_active <backend> <hold_ms>,
--   which haproxy.cfg runs only while <backend> has no server up: a write
--   that arrives then waits (without having been sent anywhere) until one is
--   up, at most hold_ms, then goes on (to a 503 if still none).  Only a
--   request not yet sent is held: nothing is replayed.
-- * The first held write starts a monitor task: while the backend has no
--   server up (and held writes keep asking), it has every node's
--   /v1/sys/health asked each STRONGROOM_FAILOVER_PROBE_MS (one short task per
--   probe) and, on a 200 (the active node alone answers 200), forces that
--   server's check up.  The regular checks run at their normal pace and take
--   over from there (and take the server out again if the 200 was a fluke).
--   So the standbys, which are always down in the write backend, are not
--   checked many times a second all the time, only while writes wait.
--
-- Configuration comes from the environment (setenv in haproxy.cfg's global
-- section): STRONGROOM_FAILOVER_PROBE_MS, STRONGROOM_FAILOVER_CHECK_URI,
-- STRONGROOM_FAILOVER_SCHEME.
-- https://docs.haproxy.org/2.6/lua-api/index.html

local probe_ms = tonumber(os.getenv("STRONGROOM_FAILOVER_PROBE_MS") or "25")
local check_uri = os.getenv("STRONGROOM_FAILOVER_CHECK_URI") or "/v1/sys/health"
local scheme = os.getenv("STRONGROOM_FAILOVER_SCHEME") or "http"
-- A probe of a hung node gives up soon; the next round tries again.
local probe_timeout_ms = 250

-- Servers with a probe under way (by name): a node slower to answer than probe_ms gets no second one.
local probing = {}

local function probe(server)
    local ok, answer = pcall(function()
        return core.httpclient():get({
            url = scheme .. "://" .. server:get_addr() .. check_uri,
            headers = { ["host"] = { "strongroom-haproxy" } },
            timeout = probe_timeout_ms,
        })
    end)
    if ok and answer ~= nil and answer.status == 200 then
        server:check_force_up()
    end
end

local function now_ms()
    local now = core.now()
    return now.sec * 1000 + now.usec / 1000
end

-- Whether the monitor task runs, and when a held write last asked for it.
local monitoring = false
local wanted_at = 0

-- While the backend has no server up and a held write wanted one within the last hold_ms: probe
-- every node each probe_ms.  Then stop: at rest the helper costs nothing.
local function monitor(backend, hold_ms)
    while tonumber(backend:get_stats()["act"]) == 0 and now_ms() - wanted_at < hold_ms do
        for name, server in pairs(backend.servers) do
            if not probing[name] then
                probing[name] = true
                -- One short-lived task per probe: a hung node holds up no other node's probe.
                core.register_task(function()
                    pcall(probe, server)
                    probing[name] = nil
                end)
            end
        end
        core.msleep(probe_ms)
    end
end

core.register_action("strongroom_wait_for_active", { "http-req" }, function(txn, name, hold_ms)
    hold_ms = tonumber(hold_ms)
    local deadline = now_ms() + hold_ms
    wanted_at = now_ms()
    if not monitoring then
        monitoring = true
        local backend = core.backends[name]
        core.register_task(function()
            pcall(monitor, backend, hold_ms)
            monitoring = false
        end)
    end
    while txn.f:nbsrv(name) == 0 and now_ms() < deadline do
        wanted_at = now_ms()
        core.msleep(5)
    end
end, 2)
