/**
 * `infercache/server`: the caching gateway, `serve({ functions })`, and the HTTP plumbing they
 * share (a route table on node:http, and serving fetch-style handlers).
 */

export { type ServedApp, type ServeFunctionsOptions, serve } from "./server/functions/serve.js";
export { createGateway, type Gateway, type GatewayOptions } from "./server/gateway/gateway.js";
export { type GatewaySnapshot, Metrics } from "./server/gateway/metrics.js";
export { HttpError } from "./server/http/errors.js";
export {
  type Handler,
  type HttpRequest,
  type ListenOptions,
  type NodeServer,
  nodeServer,
  Router,
  type ServedHandler,
  serveFetchHandler,
} from "./server/http/node-http.js";
