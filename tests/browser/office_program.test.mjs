// office_program.test.mjs: the office_program flows in the browser (to be written).
import { test } from 'node:test';
import assert from 'node:assert/strict';

test('office_program flows are written', () => {
  assert.fail('tests/browser/office_program.test.mjs has no flows yet');
});
