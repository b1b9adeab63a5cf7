// cabinet.test.mjs: the cabinet flows in the browser (to be written).
import { test } from 'node:test';
import assert from 'node:assert/strict';

test('cabinet flows are written', () => {
  assert.fail('tests/browser/cabinet.test.mjs has no flows yet');
});
