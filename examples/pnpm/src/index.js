"use strict";
const debug = require("debug")("pnpm-example");
const { v4: uuidv4 } = require("uuid");
const semver = require("semver");

exports.handler = async (event) => {
  debug("event %o", event);
  return { ok: semver.satisfies("1.2.3", "^1.0.0"), idLength: uuidv4().length, greeting: `hello ${event.name || "world"}` };
};
