"use strict";
// A CommonJS handler: dependencies come from the zip's own node_modules.
const debug = require("debug")("commonjs-example");
const { v5: uuidv5 } = require("uuid");
const ms = require("ms");

exports.handler = async (event) => {
  debug("event %o", event);
  return {
    id: uuidv5(String(event.name || "world"), uuidv5.URL),
    timeout: ms("2 days"),
    greeting: `hello ${event.name || "world"}`,
  };
};
