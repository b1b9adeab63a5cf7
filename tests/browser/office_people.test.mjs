// office_people.test.mjs: the office_people flows in the browser (to be written).
import { test } from 'node:test';
import assert from 'node:assert/strict';

test('office_people flows are written', () => {
  assert.fail('tests/browser/office_people.test.mjs has no flows yet');
});
