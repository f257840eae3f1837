import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GraphQLError } from 'graphql';
import { AppError, badUserInput, maskError } from '@jarvis/platform/errors';

test('an unexpected error (a driver error carrying SQL) reaches the client as an opaque internal error', () => {
  const driverError = Object.assign(new Error('duplicate key value violates unique constraint "users_pkey"'), {
    code: '23505',
    detail: 'Key (id)=(1) already exists.',
  });
  const masked = maskError(new GraphQLError(driverError.message, { path: ['createTenant'], originalError: driverError }));
  assert.equal(masked.message, 'Internal server error');
  assert.deepEqual(masked.extensions, { code: 'INTERNAL_SERVER_ERROR' });
  assert.deepEqual(masked.path, ['createTenant']);
  assert.ok(!JSON.stringify(masked.toJSON()).includes('users_pkey'));
});

test('errors meant for the client keep their message, code and details', () => {
  const appError = badUserInput('slug: too long', 'slug');
  const wrapped = maskError(new GraphQLError(appError.message, { path: ['x'], originalError: appError }));
  assert.equal(wrapped.message, 'slug: too long');
  assert.deepEqual(wrapped.extensions, { field: 'slug', code: 'BAD_USER_INPUT' });
  assert.ok(appError instanceof AppError);

  const validation = new GraphQLError('Cannot query field "x" on type "Query".');
  assert.equal(maskError(validation), validation);
});
