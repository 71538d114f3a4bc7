-- Argo CD health of a dockyard.dev BuildRun: Healthy once succeeded, Degraded once failed, canceled or timed out,
-- Progressing while queued, waiting or running. A finished run stays final whatever its generation
-- (setting spec.cancel after the end changes nothing).
-- Dockyard's status convention: conditions (metav1.Condition) plus status.observedGeneration.
local hs = {}

local function condition(type)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function describe(c)
  if c.message ~= nil and c.message ~= "" then
    return (c.reason or c.type) .. ": " .. c.message
  end
  return c.reason or c.type
end

local ended = {Succeeded = "Healthy", Failed = "Degraded", Error = "Degraded", Timeout = "Degraded", Canceled = "Degraded"}

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to queue the run"
  return hs
end

local succeeded = condition("Succeeded")
if succeeded ~= nil and succeeded.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(succeeded)
  return hs
end
if succeeded ~= nil and succeeded.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(succeeded)
  return hs
end
if succeeded == nil and obj.status.status ~= nil and ended[obj.status.status] ~= nil then
  hs.status = ended[obj.status.status]
  hs.message = obj.status.message or obj.status.status
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and observed ~= nil and observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

hs.status = "Progressing"
if succeeded ~= nil then
  hs.message = describe(succeeded)
else
  hs.message = obj.status.status or "Waiting for the run to start"
end
return hs
