/** `infercache/server`: the OpenAI-compatible caching gateway, and `serve({ functions })`. */

export {
  type ServedApp,
  type ServeFunctionsOptions,
  serve,
} from "./server/functions/serve.js";
export { createGateway, type Gateway, type GatewayOptions } from "./server/gateway.js";
export { Metrics } from "./server/metrics.js";
