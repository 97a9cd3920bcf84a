/**
 * The Proksi external_auth conformance suite (C01-C15): what a service must do for Proksi to
 * behave as its operator expects (docs/proksi-external-auth.md §3-§5), checked over the wire as
 * Proksi calls it. The checks run in this order; the IDs are stable, so C07 runs after C14.
 */
import type { Suite } from '../../conformance/check.js';
import { connectionChecks } from './connection.js';
import type { CapnpSuiteContext } from './context.js';
import { decisionChecks } from './decisions.js';
import { requestShapeChecks } from './requests.js';
import { wholeRunChecks } from './whole-run.js';

export const capnpSuite: Suite<CapnpSuiteContext> = {
  name: 'proksi-external-auth',
  checks: [...decisionChecks, ...requestShapeChecks, ...connectionChecks, ...wholeRunChecks],
};
