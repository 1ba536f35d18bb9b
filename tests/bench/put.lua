-- SPDX-License-Identifier: MIT
-- wrk script of tests/bench/put.sh: durable PUTs against certd's REST API or
-- against etcd's JSON gateway, every request a real change.
--
--   wrk -tTHREADS ... -s put.lua URL -- THREADS certd TOKEN TARGETS TPL_CLIENT TPL_SERVER
--   wrk -tTHREADS ... -s put.lua URL -- THREADS certd TOKEN TARGETS -list LIST
--	TARGETS: lines "ID ALIAS TYPE", one per certificate created by
--	put.sh, TYPE being its stored certificate_type (client or server).
--	TPL_CLIENT, TPL_SERVER: TeamCertificatesC bodies (jtool make) whose
--	alias is %%ALIAS%%, sent when certificate_type is to become client,
--	resp. server (the same file, or two with different certificates and
--	keys: put.sh ALT_CERT=1).  Each request is
--	PUT /openapi/v1/teams/bench/certificates/ID with the full body: the
--	stored alias, a certificate and key, and certificate_type flipped
--	between "client" and "server" starting with the one that is not
--	stored, so certd validates and writes every one (an unchanged PUT
--	would write nothing).
--	With -list, LIST names one TeamCertificatesC body a line (alias
--	%%ALIAS%%, each its own certificate and key: put.sh CHAINS=N), and
--	each target's requests go through them in turn, so that no PUT's
--	certificate is the one stored and every one is validated in full.
--
--   wrk -tTHREADS ... -s put.lua URL -- THREADS etcd PATH NKEYS VALUE_A VALUE_B
--	POST PATH (/v3/kv/put) {"key": b64("bench/K"), "value": b64(VALUE)}
--	with VALUE alternating between the contents of VALUE_A and VALUE_B
--	per key (put.sh passes certd's two request bodies, so the value has
--	the size of certd's request body).
--
-- Targets are split between wrk's threads (target i goes to thread
-- i mod threads); each thread takes its targets round robin, one per
-- request.  With as many targets as connections, two requests in flight
-- rarely share a target, so connections do not queue behind one record.
--
-- done() prints one line "RESULT key=value ..." for put.sh: requests,
-- seconds, rps, latency percentiles in ms, and wrk's error counts (status
-- counts answers >= 400, i.e. wrk's "Non-2xx or 3xx responses").

local threads = {}
local counter = 0

function setup(thread)
	thread:set("tindex", counter)
	counter = counter + 1
	table.insert(threads, thread)
end

local function readfile(path)
	local f = assert(io.open(path, "rb"))
	local s = f:read("*a")
	f:close()
	return s
end

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function b64(s)
	local out = {}
	for i = 1, #s, 3 do
		local a, b, c = s:byte(i, i + 2)
		local n = a * 65536 + (b or 0) * 256 + (c or 0)
		local c1 = math.floor(n / 262144) % 64
		local c2 = math.floor(n / 4096) % 64
		local c3 = math.floor(n / 64) % 64
		local c4 = n % 64
		out[#out + 1] = b64chars:sub(c1 + 1, c1 + 1) .. b64chars:sub(c2 + 1, c2 + 1) ..
		    (b and b64chars:sub(c3 + 1, c3 + 1) or "=") ..
		    (c and b64chars:sub(c4 + 1, c4 + 1) or "=")
	end
	return table.concat(out)
end

-- plain (non-pattern) replacement of every occurrence of `what`
local function replace(s, what, with)
	local out, pos = {}, 1
	while true do
		local i, j = s:find(what, pos, true)
		if i == nil then break end
		out[#out + 1] = s:sub(pos, i - 1)
		out[#out + 1] = with
		pos = j + 1
	end
	out[#out + 1] = s:sub(pos)
	return table.concat(out)
end

local mine = {}		-- this thread's targets: {path, bodies, reqs, k (last sent)}
local nxt = 1
local method = "PUT"
local headers = {}

function init(argv)
	-- drop the leading THREADS (wrk -t again: a thread cannot see it)
	local nthreads = tonumber(argv[1] or "")
	if nthreads == nil or nthreads < 1 then
		error("put.lua: the first argument must be wrk's -t")
	end
	local args = {}
	for i = 2, #argv do args[i - 1] = argv[i] end
	local mode = args[1]
	local all = {}
	if mode == "certd" then
		local token, targets = args[2], args[3]
		local tpl, list = nil, nil
		if args[4] == "-list" then
			list = {}
			for path in io.lines(args[5]) do list[#list + 1] = readfile(path) end
		else
			tpl = { client = readfile(args[4]), server = readfile(args[5]) }
		end
		headers["Authorization"] = token
		headers["Content-Type"] = "application/json"
		method = "PUT"
		for line in io.lines(targets) do
			local id, alias, stored = line:match("^(%d+) (%S+) (%S+)$")
			if id then
				local other = stored == "client" and "server" or "client"
				local function body(ty)
					return replace(replace(tpl[ty], "%%ALIAS%%", alias),
					    "%%TYPE%%", ty)
				end
				local bodies = {}
				if list then
					for k, b in ipairs(list) do
						bodies[k] = replace(b, "%%ALIAS%%", alias)
					end
				else
					-- bodies[1] goes first
					bodies = { body(other), body(stored) }
				end
				all[#all + 1] = {
					path = "/openapi/v1/teams/bench/certificates/" .. id,
					bodies = bodies,
				}
			end
		end
	elseif mode == "etcd" then
		local path, nkeys = args[2], tonumber(args[3])
		local va, vb = b64(readfile(args[4])), b64(readfile(args[5]))
		headers["Content-Type"] = "application/json"
		method = "POST"
		for k = 1, nkeys do
			local key = b64("bench/" .. k)
			all[#all + 1] = {
				path = path,
				bodies = { '{"key":"' .. key .. '","value":"' .. va .. '"}',
				    '{"key":"' .. key .. '","value":"' .. vb .. '"}' },
			}
		end
	else
		error("put.lua: first argument must be certd or etcd")
	end
	-- Each request is formatted once, here: request() only hands it over,
	-- so that wrk spends as little CPU as it can beside the server.
	for i, t in ipairs(all) do
		if (i - 1) % nthreads == tindex then
			t.k = 0
			t.reqs = {}
			for k = 1, #t.bodies do
				t.reqs[k] = wrk.format(method, t.path, headers, t.bodies[k])
			end
			mine[#mine + 1] = t
		end
	end
	if #mine == 0 then error("put.lua: no targets for thread " .. tindex) end
end

function request()
	local t = mine[nxt]
	nxt = nxt % #mine + 1
	t.k = t.k % #t.reqs + 1
	return t.reqs[t.k]
end

function done(summary, latency, requests)
	local e = summary.errors
	local secs = summary.duration / 1e6
	io.write(string.format(
	    "RESULT requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f " ..
	    "p99_ms=%.3f max_ms=%.3f mean_ms=%.3f status_errors=%d connect_errors=%d " ..
	    "read_errors=%d write_errors=%d timeouts=%d\n",
	    summary.requests, secs, summary.requests / secs,
	    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
	    latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000,
	    e.status, e.connect, e.read, e.write, e.timeout))
end
