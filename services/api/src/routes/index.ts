import type { RouteSpec } from '../route-spec.ts';
import { getAssurance, verifyAssurance } from './assurance.ts';
import { healthz, metricsRoute, openApiRoute, readyz } from './ops.ts';
import { getSignals, postSignal } from './signals.ts';
import { pushSet } from './ssf.ts';
import {
  addSubject,
  createStream,
  deleteStream,
  pollSets,
  readStatus,
  readStream,
  removeSubject,
  requestVerification,
  ssfConfiguration,
  ssfJwks,
  updateStatus,
  updateStream,
} from './ssf-tx.ts';

/** Every route of the API, in the order the OpenAPI document lists them. */
export const ROUTES: readonly RouteSpec[] = [
  getAssurance,
  verifyAssurance,
  getSignals,
  postSignal,
  pushSet,
  ssfConfiguration,
  ssfJwks,
  createStream,
  readStream,
  updateStream,
  deleteStream,
  readStatus,
  updateStatus,
  addSubject,
  removeSubject,
  requestVerification,
  pollSets,
  healthz,
  readyz,
  metricsRoute,
  openApiRoute,
];
