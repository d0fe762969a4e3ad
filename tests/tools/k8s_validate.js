#!/usr/bin/env node
// k8s_validate.js MODULES_DIR OBJECTS.json: validates each Kubernetes object
// of the JSON array against its JSON schema, with the npm packages
// kubernetes-models (core and built-in groups) and @kubernetes-models/keda
// (keda.sh), installed under MODULES_DIR by tests/tools/npm-tools. Prints one
// line per object ("valid KIND NAME" or "invalid KIND NAME: why"); exits 1 if
// any object is invalid or has no known schema.
"use strict";
const fs = require("fs");

const [dir, file] = process.argv.slice(2);
if (!dir || !file) {
    process.stderr.write("usage: k8s_validate.js MODULES_DIR OBJECTS.json\n");
    process.exit(2);
}
const load = (m) => require(require.resolve(m, { paths: [dir] }));

function modelFor(apiVersion, kind) {
    const pkg = apiVersion.startsWith("keda.sh/") ? "@kubernetes-models/keda" : "kubernetes-models";
    let mod;
    try {
        mod = load(`${pkg}/${apiVersion}`);
    } catch (e) {
        return null;
    }
    return mod[kind] || null;
}

let bad = 0;
for (const obj of JSON.parse(fs.readFileSync(file, "utf8"))) {
    const what = `${obj.kind} ${obj.metadata && obj.metadata.name}`;
    const Model = modelFor(String(obj.apiVersion), String(obj.kind));
    if (!Model) {
        console.log(`invalid ${what}: no schema for ${obj.apiVersion} ${obj.kind}`);
        bad++;
        continue;
    }
    try {
        new Model(obj).validate();
        console.log(`valid ${what}`);
    } catch (e) {
        console.log(`invalid ${what}: ${String(e.message || e).replace(/\s+/g, " ")}`);
        bad++;
    }
}
process.exit(bad ? 1 : 0);
