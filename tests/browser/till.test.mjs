// till.test.mjs: the till flows in the browser (to be written).
import { test } from 'node:test';
import assert from 'node:assert/strict';

test('till flows are written', () => {
  assert.fail('tests/browser/till.test.mjs has no flows yet');
});
