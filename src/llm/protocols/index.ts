/**
 * The API families the pipeline caches by default, in one list: the gateway and `cachingFetch`
 * both start from it. Adding an API is adding its protocol module and a line here.
 */

import type { Protocol } from "../protocol.js";
import { countTokensProtocol, messagesProtocol } from "./anthropic.js";
import { transcriptionsProtocol, translationsProtocol } from "./audio.js";
import { chatProtocol, completionProtocol } from "./chat.js";
import { embeddingsProtocol, type ItemizedProtocol } from "./embeddings.js";
import { geminiProtocol } from "./gemini.js";
import { imageEditsProtocol, imageGenerationsProtocol } from "./images.js";
import { moderationsProtocol } from "./moderations.js";
import { rerankProtocol } from "./rerank.js";
import { responsesProtocol } from "./responses.js";
import { speechProtocol } from "./speech.js";

export const defaultProtocols: readonly (Protocol | ItemizedProtocol)[] = [
  chatProtocol,
  completionProtocol,
  embeddingsProtocol,
  responsesProtocol,
  messagesProtocol,
  countTokensProtocol,
  geminiProtocol,
  transcriptionsProtocol,
  translationsProtocol,
  speechProtocol,
  rerankProtocol,
  moderationsProtocol,
  imageGenerationsProtocol,
  imageEditsProtocol,
];
