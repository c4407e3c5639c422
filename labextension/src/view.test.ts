import { test } from 'node:test';
import assert from 'node:assert/strict';
import { absoluteUrl, versionRows } from './view';

test('labels sit next to their versions and failed loads read FAILED', () => {
  const rows = versionRows({
    name: 'm',
    base_path: '/m',
    policy: 'all {}',
    labels: { stable: 1, canary: 2, blue: 1 },
    versions: [
      { version: 3, state: 'END', error: 'bad saved_model.pb' },
      { version: 2, state: 'AVAILABLE', error: '' },
      { version: 1, state: 'END', error: '' }
    ]
  });
  assert.deepEqual(rows, [
    { version: 3, state: 'FAILED', labels: '', error: 'bad saved_model.pb' },
    { version: 2, state: 'AVAILABLE', labels: 'canary', error: '' },
    { version: 1, state: 'END', labels: 'blue, stable', error: '' }
  ]);
});

test('absolute URLs join the origin and the proxy path', () => {
  assert.equal(absoluteUrl('http://h:8888/', '/user/a/tfserve/x/'), 'http://h:8888/user/a/tfserve/x/');
});
