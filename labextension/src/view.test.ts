import { test } from 'node:test';
import assert from 'node:assert/strict';
import { absoluteUrl, followedDetail, ServerInfo, serverFacts, stopQuestion, urlParts } from './view';

const server = (name: string, models: string[] = []): ServerInfo => ({
  name,
  pid: 1,
  rest_api_port: 2,
  grpc_port: null,
  alive: true,
  proxy_url: `/tfserve/${name}/`,
  model_views: models.map(m => ({
    name: m,
    versions: [],
    curl: { command: 'curl -H x', shown: 'curl -H y' }
  }))
});

test('absolute URLs join the origin and the proxy path', () => {
  assert.equal(absoluteUrl('http://h:8888/', '/user/a/tfserve/x/'), 'http://h:8888/user/a/tfserve/x/');
});

test('a URL wraps only after its slashes', () => {
  assert.deepEqual(urlParts('http://127.0.0.1:8888/jp/tfserve/digits/'),
                   ['http://', '127.0.0.1:8888/', 'jp/', 'tfserve/', 'digits/']);
  assert.deepEqual(urlParts('http://h/a/b'), ['http://', 'h/', 'a/', 'b']);
  assert.equal(urlParts('http://h/x/v1/models/m:predict').join(''), 'http://h/x/v1/models/m:predict');
});

test('the log follows its server and is dropped when the server goes', () => {
  const log = { kind: 'log' as const, server: 'a' };
  assert.deepEqual(followedDetail(log, [server('b'), server('a')]), log);
  assert.equal(followedDetail(log, [server('b')]), null);
  assert.equal(followedDetail(log, []), null);
  assert.equal(followedDetail(null, [server('a')]), null);
});

test('a curl command is dropped when its model goes', () => {
  const curl = { kind: 'curl' as const, server: 'a', model: 'm' };
  assert.deepEqual(followedDetail(curl, [server('a', ['m'])]), curl);
  assert.equal(followedDetail(curl, [server('a', ['n'])]), null);
});

test('a server says whose it is, and Stop asks naming who loses it', () => {
  const owned = { ...server('digits'), owner: '01_quickstart.ipynb', grpc_port: 3 };
  assert.deepEqual(serverFacts(owned), ['pid 1', 'port 2', 'gRPC 3', 'from 01_quickstart.ipynb']);
  assert.match(stopQuestion(owned), /^digits belongs to 01_quickstart\.ipynb: that notebook loses/);
  const detached = { ...server('shared'), owner: 'detached' };
  assert.deepEqual(serverFacts(detached), ['pid 1', 'port 2', 'detached']);
  assert.match(stopQuestion(detached), /^shared stops serving at once/);
  assert.deepEqual(serverFacts({ ...server('prod'), remote: true }), ['remote', 'port 2']);
});
