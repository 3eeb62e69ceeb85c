-- wrk script: borrow/return cycles over the load tool's tenants (issue 21, target 2).
--
--   wrk -t2 -c64 -d8s -s benches/wrk/borrow_return.lua http://127.0.0.1:PORT -- TENANTS_TSV
--
-- TENANTS_TSV: one "tenant-id<TAB>api-key" line per tenant (benches/wrk.sh writes it from
-- the load tool's credentials file; their signature policy is "off"). Each request is a
-- return of a seat this thread holds, or else a borrow from the next tenant in turn, so
-- borrows and returns alternate as in `permetrix load`. The borrow's user is its tenant's
-- id, which the reply echoes: that is how a reply finds the tenant to return to.
local tenants, next_tenant, held = {}, 0, {}

function init(args)
  for line in io.lines(args[1]) do
    local id, key = line:match("^(%S+)\t(%S+)$")
    if id then
      tenants[#tenants + 1] = {
        id = id,
        headers = {
          ["Host"] = id .. ".localhost",
          ["Authorization"] = "Bearer " .. key,
          ["Content-Type"] = "application/json",
        },
      }
    end
  end
  by_id = {}
  for _, t in ipairs(tenants) do by_id[t.id] = t end
end

function request()
  local seat = table.remove(held)
  if seat then
    return wrk.format("POST", "/licenses/return", seat.tenant.headers,
      '{"id":"' .. seat.id .. '"}')
  end
  next_tenant = next_tenant % #tenants + 1
  local t = tenants[next_tenant]
  return wrk.format("POST", "/licenses/borrow", t.headers,
    '{"tool":"tool-0","user":"' .. t.id .. '"}')
end

function response(status, headers, body)
  if status == 200 then
    local id, user = body:match('"id":"([^"]+)".-"user":"([^"]+)"')
    if id and by_id[user] then
      held[#held + 1] = { id = id, tenant = by_id[user] }
    end
  end
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format("non-2xx %d, socket errors %d\n", errors.status,
    errors.connect + errors.read + errors.write + errors.timeout))
end
