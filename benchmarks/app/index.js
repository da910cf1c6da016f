"use strict";
// The benchmark's function: a realistic production dependency set, about 24,000 files.
const _ = require("lodash");
exports.handler = async (event) => ({ keys: _.keys(event) });
