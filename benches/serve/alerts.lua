-- wrk script: realistic Alertmanager webhook bodies (version 4), each delivery a new groupKey
-- (so each is recorded, none is a duplicate), alerts over 100 fingerprints.
-- Usage: wrk -s benches/serve/alerts.lua -H "Authorization: Bearer TOKEN" URL
-- With PAUSE_MS=N in the environment, each connection waits N ms after each answer before
-- its next request: an offered rate of about connections * 1000 / (N + latency) per second.
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("id", thread_id)
  thread_id = thread_id + 1
  table.insert(threads, thread)
end

local pause = tonumber(os.getenv("PAUSE_MS") or "0")

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function delay()
  return pause
end

request = function()
  counter = counter + 1
  local fp = string.format("%016x", counter % 100)
  local body = string.format([[{"version":"4","groupKey":"{}:{alertname=\"SseAvailabilitySLOViolation\"}-%d-%d","truncatedAlerts":0,"status":"firing","receiver":"runbook","groupLabels":{"alertname":"SseAvailabilitySLOViolation"},"commonLabels":{"alertname":"SseAvailabilitySLOViolation","severity":"critical","service":"aurora-live-feed"},"commonAnnotations":{"summary":"SSE availability below 99.9%% over 5m"},"externalURL":"http://alertmanager.example:9093","alerts":[{"status":"firing","labels":{"alertname":"SseAvailabilitySLOViolation","instance":"aurora-%d:8001","job":"aurora","severity":"critical","service":"aurora-live-feed"},"annotations":{"summary":"SSE availability below 99.9%% over 5m","description":"sse:availability_ratio:5m is 0.991 on aurora-%d","runbook_url":"https://runbooks.example/sse-availability-slo"},"startsAt":"2026-11-23T10:00:00.123456789Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus.example:9090/graph?g0.expr=sse%%3Aavailability_ratio%%3A5m+%%3C+0.999","fingerprint":"%s"}]}]],
    id, counter, counter % 100, counter % 100, fp)
  return wrk.format(nil, nil, nil, body)
end
