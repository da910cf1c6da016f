// An ESM handler. Node's ESM loader ignores NODE_PATH, so with dependencies in a layer it finds
// them only through the zip's node_modules -> /opt/nodejs/node_modules link.
import { customAlphabet } from "nanoid";
import createDebug from "debug";

const debug = createDebug("esm-layer-example");
const id = customAlphabet("abcdef", 8);

export const handler = async (event) => {
  debug("event %o", event);
  return { id: id().length, greeting: `hello ${event.name || "world"}`, module: "esm" };
};
