-- wrk script: the requests of read.lua (or write.lua, with BENCH_METHOD), each wrk thread bound to one of
-- several servers, so one wrk run spreads its connections evenly over them (threads = a multiple of servers).
--
-- Settings come from the environment (bench/reads.py and bench/haproxy_cost.py set them):
--   BENCH_ADDRS        comma-separated host:port list; thread i talks to BENCH_ADDRS[i mod n]
--                      (unset: every thread talks to the URL given to wrk)
--   BENCH_METHOD       GET (default), POST or PUT
--   BENCH_PATH_PREFIX  path before the key number, e.g. /v1/secret/data/bench/k
--   BENCH_KEYS         number of keys in turn (default 64)
--   BENCH_BODY         request body for POST/PUT
--   BENCH_TOKEN        sent as X-Vault-Token when set
-- At the end it prints one line per thread: "thread <i> <host:port> requests <n>".

local addrs = {}
for addr in string.gmatch(os.getenv("BENCH_ADDRS") or "", "[^,]+") do
   addrs[#addrs + 1] = addr
end

local threads = {}
setup = function(thread)
   local index = #threads
   if #addrs > 0 then
      local addr = addrs[(index % #addrs) + 1]
      local host, port = string.match(addr, "^(.+):(%d+)$")
      thread.addr = wrk.lookup(host, port)[1]
      thread:set("label", addr)
   else
      thread:set("label", wrk.host .. ":" .. tostring(wrk.port))
   end
   thread:set("index", index)
   threads[#threads + 1] = thread
end

local method = os.getenv("BENCH_METHOD") or "GET"
local prefix = os.getenv("BENCH_PATH_PREFIX") or "/v1/secret/data/bench/k"
local keys = tonumber(os.getenv("BENCH_KEYS") or "64")
local body = os.getenv("BENCH_BODY")
local token = os.getenv("BENCH_TOKEN") or ""

local requests = {}
local n = 0
sent = 0

init = function(args)
   -- wrk 4.1 (Debian) does not add Host to requests made with wrk.format; Go servers refuse them.
   local headers = { ["Host"] = wrk.host }
   if token ~= "" then headers["X-Vault-Token"] = token end
   if method ~= "GET" and method ~= "HEAD" then headers["Content-Type"] = "application/json" end
   for i = 0, keys - 1 do
      requests[i] = wrk.format(method, prefix .. i, headers, (method ~= "GET" and method ~= "HEAD") and body or nil)
   end
end

request = function()
   local r = requests[n % keys]
   n = n + 1
   sent = n
   return r
end

done = function(summary, latency, requests)
   for _, thread in ipairs(threads) do
      io.write(string.format("thread %d %s requests %d\n", thread:get("index"), thread:get("label"),
                             thread:get("sent") or 0))
   end
end
