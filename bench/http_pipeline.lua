-- wrk script: 16 pipelined GET / requests in each write (wrk counts each
-- response).  Usage: wrk -s bench/http_pipeline.lua http://HOST:PORT/
local depth = 16

init = function(args)
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format(nil, "/")
   end
   req = table.concat(r)
end

request = function()
   return req
end
