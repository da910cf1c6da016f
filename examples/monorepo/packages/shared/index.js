"use strict";
const ms = require("ms");
exports.describe = (name) => `hello ${name}, see you in ${ms(ms("1 day"), { long: true })}`;
