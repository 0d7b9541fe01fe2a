#!/usr/bin/env node
'use strict';
// hush-provider-nodeenv: an example hush provider plugin in Node.js. It
// does what hashicorp/go-plugin expects of a plugin process, as the hush
// agent launches it (see sdk/PROTOCOL.md):
//   1. refuse to run unless the magic cookie is in the environment;
//   2. make a self-signed server certificate and trust only the host's
//      (AutoMTLS: the host's certificate comes in PLUGIN_CLIENT_CERT);
//   3. serve gRPC on 127.0.0.1:0: grpc.health.v1.Health, go-plugin's
//      GRPCController, and hush.provider.v1.Provider;
//   4. print the handshake line on stdout, and log hclog JSON to stderr.

const { webcrypto, KeyObject, randomBytes } = require('node:crypto');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
require('reflect-metadata'); // @peculiar/x509 needs a Reflect polyfill
const x509 = require('@peculiar/x509');
const { HealthImplementation } = require('grpc-health-check');
const { newProvider } = require('./provider');

const VERSION = require('./package.json').version;

// The go-plugin handshake of hush providers (sdk/provider/plugin.go).
const MAGIC_COOKIE_KEY = 'HUSH_PROVIDER_PLUGIN';
const MAGIC_COOKIE_VALUE = '927fc1c02d45b6f890d84e541910fe38ea203574551c6f548db4e8933c476e27';
const CORE_PROTOCOL_VERSION = 1; // go-plugin's own
const APP_PROTOCOL_VERSION = 1; // provider.Handshake.ProtocolVersion

// The provider's proto is the repository's own; a plugin kept elsewhere
// would ship a copy of it.
const PROVIDER_PROTO = path.join(__dirname, '../../sdk/internal/proto/provider/v1/provider.proto');
const CONTROLLER_PROTO = path.join(__dirname, 'proto/grpc_controller.proto');

// log writes one hclog JSON line to stderr, which the host re-emits under
// the plugin's name at the line's level. go-plugin parses @timestamp with
// six fractional digits, hence the padding. Never log a secret's value.
function log(level, message, fields = {}) {
  const timestamp = new Date().toISOString().replace('Z', '000Z');
  process.stderr.write(`${JSON.stringify({ '@level': level, '@message': message, '@module': 'nodeenv', '@timestamp': timestamp, ...fields })}\n`);
}

// serverCertificate makes a self-signed certificate for "localhost", as
// go-plugin's Go servers do (mtls.go): the host pins it as its only root,
// so it is both the leaf and its own CA. ECDSA P-256 keeps startup fast.
async function serverCertificate() {
  x509.cryptoProvider.set(webcrypto);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const serial = randomBytes(16);
  serial[0] &= 0x7f; // a positive serial number
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString('hex'),
    name: 'CN=localhost, O=hush',
    notBefore: new Date(Date.now() - 30_000), // clock skew
    notAfter: new Date(Date.now() + 365 * 24 * 3600_000),
    signingAlgorithm: alg,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'localhost' }]),
    ],
  });
  return {
    certPEM: cert.toString('pem'),
    keyPEM: KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }),
    // go-plugin decodes the handshake's certificate as unpadded base64 DER.
    handshake: Buffer.from(cert.rawData).toString('base64').replace(/=+$/, ''),
  };
}

function loadService(file, name) {
  const def = protoLoader.loadSync(file, { keepCase: true, longs: Number, enums: String, defaults: true });
  return grpc.loadPackageDefinition(def)[name.split('.')[0]];
}

// exitWithParent exits once the host is gone: an orphaned plugin would hold
// credentials for no one. The host kills its plugins when it stops, but it
// cannot when it is killed with SIGKILL.
function exitWithParent() {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(1);
  }, 500).unref();
}

async function main() {
  if (process.env[MAGIC_COOKIE_KEY] !== MAGIC_COOKIE_VALUE) {
    process.stderr.write('This binary is a hush provider plugin. It is not meant to be run directly:\n'
      + 'the hush agent launches it. Declare it in a plugin block of the agent config.\n');
    process.exit(1);
  }
  const clientCert = process.env.PLUGIN_CLIENT_CERT;
  if (!clientCert) {
    // hush's agent always uses AutoMTLS; serving in plaintext would let any
    // local process ask for secrets.
    log('error', 'PLUGIN_CLIENT_CERT is not set: this plugin only serves a host that uses AutoMTLS');
    process.exit(1);
  }
  try {
    new x509.X509Certificate(clientCert); // eslint-disable-line no-new
  } catch (err) {
    log('error', 'PLUGIN_CLIENT_CERT is not a PEM certificate', { error: err.message });
    process.exit(1);
  }

  const { certPEM, keyPEM, handshake } = await serverCertificate();
  // The host's certificate is the only CA, and a client must present one
  // that it signed: the host's own.
  const creds = grpc.ServerCredentials.createSsl(Buffer.from(clientCert),
    [{ cert_chain: Buffer.from(certPEM), private_key: Buffer.from(keyPEM) }], true);

  const server = new grpc.Server();
  new HealthImplementation({ '': 'SERVING', plugin: 'SERVING' }).addToServer(server);
  server.addService(loadService(CONTROLLER_PROTO, 'plugin').GRPCController.service, {
    Shutdown(_call, callback) {
      log('debug', 'shutdown requested by the host');
      callback(null, {});
      server.tryShutdown(() => process.exit(0));
    },
  });
  const v1 = loadService(PROVIDER_PROTO, 'hush').provider.v1;
  server.addService(v1.Provider.service, newProvider(VERSION));

  server.bindAsync('127.0.0.1:0', creds, (err, port) => {
    if (err) {
      log('error', 'listen', { error: err.message });
      process.exit(1);
    }
    log('info', 'serving', { address: `127.0.0.1:${port}`, version: VERSION });
    // CORE-PROTOCOL-VERSION|APP-PROTOCOL-VERSION|NETWORK|ADDRESS|PROTOCOL|SERVER-CERT
    process.stdout.write(`${CORE_PROTOCOL_VERSION}|${APP_PROTOCOL_VERSION}|tcp|127.0.0.1:${port}|grpc|${handshake}\n`);
  });
  exitWithParent();
  // Ctrl-C in a terminal reaches the whole process group: the host decides
  // when its plugins stop, as go-plugin's Go servers let it.
  process.on('SIGINT', () => log('debug', 'ignoring SIGINT: the host stops the plugin'));
  process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
}

main().catch((err) => {
  log('error', 'start plugin', { error: err.message });
  process.exit(1);
});
