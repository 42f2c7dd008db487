/** `infercache/server`: the OpenAI-compatible caching gateway. */
export { createGateway, type Gateway, type GatewayOptions } from "./server/gateway.js";
export { Metrics } from "./server/metrics.js";
export { type ServedApp, type ServeOptions, serve } from "./server/serve.js";
