'use strict';
// The nodeenv provider: the provider service of hush.provider.v1, with the
// semantics of examples/provider-env. It serves the variables of its config
// block ({"vars": {"NAME": "value"}}); a reference is a variable's name.
// It never reads its own environment: the agent starts plugins with an
// empty one, so that nothing of the agent's leaks into them.

const grpc = require('@grpc/grpc-js');

// The provider API versions this plugin speaks. The host picks the highest
// one it speaks too and passes it to Configure.
const API_VERSIONS = [1];

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

// error and warning build the diagnostics that Configure returns; attribute
// names the config key at fault so that the agent can point at its line.
const error = (attribute, summary, detail = '') =>
  ({ severity: 'SEVERITY_ERROR', summary, detail, attribute });
const warning = (attribute, summary, detail = '') =>
  ({ severity: 'SEVERITY_WARNING', summary, detail, attribute });

// kindOf names a JSON value's kind the way a config author thinks of it.
function kindOf(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

// checkConfig parses a config block and returns [vars, diagnostics]. It
// reports every problem at once, and rejects unknown keys so that a
// misspelt setting is an error rather than silently ignored.
function checkConfig(raw) {
  let cfg = {};
  if (raw.length > 0 && raw.toString().trim() !== '') {
    try {
      cfg = JSON.parse(raw.toString());
    } catch (err) {
      return [null, [error('', 'invalid config', err.message)]];
    }
  }
  if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg)) {
    return [null, [error('', `the config must be an object, not ${kindOf(cfg)}`)]];
  }
  const diags = [];
  for (const key of Object.keys(cfg).sort()) {
    if (key !== 'vars') {
      diags.push(error(key, `unknown setting "${key}"`,
        "remove it or check its spelling against the provider's documentation"));
    }
  }
  const vars = cfg.vars ?? {};
  if (typeof vars !== 'object' || Array.isArray(vars) || vars === null) {
    diags.push(error('vars', `vars must be an object, not ${kindOf(vars)}`));
    return [null, diags];
  }
  for (const name of Object.keys(vars).sort()) {
    if (!VAR_NAME.test(name)) {
      diags.push(error('vars', `"${name}" is not a variable name`,
        'use letters, digits and _, not starting with a digit'));
    } else if (typeof vars[name] !== 'string') {
      diags.push(error('vars', `vars.${name} must be a string, not ${kindOf(vars[name])}`));
    }
  }
  if (Object.keys(vars).length === 0) {
    diags.push(warning('vars', 'vars is empty: every reference will be not found'));
  }
  return [new Map(Object.entries(vars)), diags];
}

// newProvider returns the handlers of the Provider service. Put and Delete
// are left out: grpc-js answers UNIMPLEMENTED for them, which is what the
// protocol asks of a provider without the "store" capability.
function newProvider(version) {
  let vars = null; // a Map once configured

  return {
    GetInfo(_call, callback) {
      callback(null, { name: 'nodeenv', version, api_versions: API_VERSIONS, capabilities: [] });
    },

    Configure(call, callback) {
      const { api_version: apiVersion, config_json: configJSON } = call.request;
      if (!API_VERSIONS.includes(apiVersion)) {
        callback(null, { diagnostics: [error('', `provider API version ${apiVersion} is not one this plugin speaks`,
          `it speaks ${API_VERSIONS.join(', ')}: upgrade whichever of the agent and the plugin is older`)] });
        return;
      }
      const [parsed, diagnostics] = checkConfig(configJSON);
      if (!diagnostics.some((d) => d.severity === 'SEVERITY_ERROR')) {
        vars = parsed;
      }
      callback(null, { diagnostics });
    },

    Resolve(call, callback) {
      // A call whose caller has gone away answers at once.
      if (call.cancelled) {
        callback({ code: grpc.status.CANCELLED, details: 'the host canceled the call' });
        return;
      }
      if (vars === null) {
        callback({ code: grpc.status.FAILED_PRECONDITION,
          details: 'the nodeenv provider is not configured: the host must call Configure first' });
        return;
      }
      // One result per reference, in request order. The message names the
      // reference, never a value.
      const results = call.request.references.map((reference) => (vars.has(reference)
        ? { reference, value: Buffer.from(vars.get(reference)) }
        : { reference, error: { code: 'CODE_NOT_FOUND', message: `no variable "${reference}" in the nodeenv provider's config` } }));
      callback(null, { results });
    },
  };
}

module.exports = { newProvider, checkConfig, API_VERSIONS };
