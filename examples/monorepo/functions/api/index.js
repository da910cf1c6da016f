"use strict";
const debug = require("debug")("api");
const { describe } = require("@demo/shared");

exports.handler = async (event) => {
  debug("event %o", event);
  return { greeting: describe(event.name || "world") };
};
